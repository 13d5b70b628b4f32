// Bulk statistics (virConnectGetAllDomainStats) against a private test-driver node.
using QubesWeb.Hypervisor.Libvirt;

namespace QubesWeb.IntegrationTests.Libvirt;

public sealed class DomainStatsTests
{
    [Fact]
    public void State_stats_cover_every_domain_with_its_state()
    {
        var running = new TestNodeDomain("running", Guid.NewGuid(), TestNode.Running);
        var paused = new TestNodeDomain("paused", Guid.NewGuid(), TestNode.Paused);
        var off = new TestNodeDomain("off", Guid.NewGuid(), TestNode.Shutoff);
        using var node = new TestNode(running, paused, off);
        using var connect = Connect.Open(node.Uri);

        var stats = connect.GetAllDomainStats(DomainStatsTypes.State);

        var byName = stats.ToDictionary(s => s.Name);
        Assert.Equal(3, byName.Count);
        Assert.Equal(DomainState.Running, byName["running"].State);
        Assert.Equal(DomainState.Paused, byName["paused"].State);
        Assert.Equal(DomainState.Shutoff, byName["off"].State);
        Assert.Equal(running.Uuid, byName["running"].Uuid);
        Assert.IsType<int>(byName["off"].Parameters["state.reason"]);
    }

    [Fact]
    public void Stats_filter_flags_select_domains()
    {
        using var node = new TestNode(
            new TestNodeDomain("running", Guid.NewGuid(), TestNode.Running),
            new TestNodeDomain("off", Guid.NewGuid(), TestNode.Shutoff));
        using var connect = Connect.Open(node.Uri);

        var active = connect.GetAllDomainStats(DomainStatsTypes.State, ConnectGetAllDomainStatsFlags.Active);

        Assert.Equal("running", Assert.Single(active).Name);
    }

    [Fact]
    public void Unsupported_stat_groups_are_omitted_unless_enforced()
    {
        using var node = new TestNode(new TestNodeDomain("running", Guid.NewGuid(), TestNode.Running));
        using var connect = Connect.Open(node.Uri);
        const DomainStatsTypes wanted = DomainStatsTypes.State | DomainStatsTypes.Balloon | DomainStatsTypes.Vcpu;

        var record = Assert.Single(connect.GetAllDomainStats(wanted));
        var error = Assert.Throws<LibvirtException>(
            () => connect.GetAllDomainStats(wanted, ConnectGetAllDomainStatsFlags.EnforceStats));

        // The test driver only knows the state group.
        Assert.Equal(["state.reason", "state.state"], record.Parameters.Keys.Order());
        Assert.Equal(DomainState.Running, record.State);
        Assert.Equal(ErrorNumber.ArgumentUnsupported, error.Code);
    }

    [Fact]
    public void A_node_without_domains_has_no_stats()
    {
        using var node = new TestNode();
        using var connect = Connect.Open(node.Uri);

        Assert.Empty(connect.GetAllDomainStats(DomainStatsTypes.State));
    }
}

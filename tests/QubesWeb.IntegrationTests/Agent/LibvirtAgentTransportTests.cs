// The libvirt transport against libvirt's test driver, which has no guest agents: every command must fail with a clear
// "not supported" message rather than a bare libvirt error.
using QubesWeb.Hypervisor.Agent;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Libvirt;

namespace QubesWeb.IntegrationTests.Agent;

public sealed class LibvirtAgentTransportTests
{
    private static TestNode WorkNode() =>
        new(new TestNodeDomain("work", Guid.Parse("6d1f0c4e-2b7a-4e58-9c3d-0a5b7e9f1c01"), TestNode.Running));

    [Fact]
    public void The_binding_reports_the_test_driver_as_not_supporting_agent_commands()
    {
        using var node = WorkNode();
        using var connect = Connect.Open(node.Uri);
        using var work = connect.LookupDomainByName("work");

        var error = Assert.Throws<LibvirtException>(() =>
            QemuAgent.Command(work, """{"execute":"guest-ping"}""", QemuAgentCommandTimeout.Default));

        Assert.Equal(ErrorNumber.NoSupport, error.Code);
        Assert.Equal("this function is not supported by the connection driver: virDomainQemuAgentCommand",
            error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => QemuAgent.Command(work, "{}", 0));
    }

    [Fact]
    public async Task Every_agent_command_through_the_test_driver_is_a_clear_not_supported_error()
    {
        using var node = WorkNode();
        using var connect = Connect.Open(node.Uri);
        using var work = connect.LookupDomainByName("work");
        var agent = new GuestAgent(LibvirtAgentTransport.ForDomain(work));

        var ping = await Assert.ThrowsAsync<GuestAgentUnavailableException>(() => agent.PingAsync());
        var run = await Assert.ThrowsAsync<GuestAgentUnavailableException>(() =>
            agent.RunAsync("/bin/echo", ["hi"], TimeSpan.FromSeconds(5)));
        var shutdown = await Assert.ThrowsAsync<GuestAgentUnavailableException>(() => agent.ShutdownAsync());

        Assert.Equal("Cannot reach the guest agent of 'work': this libvirt connection's driver does not pass commands " +
            "to guest agents, only the qemu driver does (libvirt: this function is not supported by the connection " +
            "driver: virDomainQemuAgentCommand).", ping.Message);
        Assert.Equal(ping.Message, run.Message);
        Assert.Equal(ping.Message, shutdown.Message);
        var cause = Assert.IsType<LibvirtException>(ping.InnerException);
        Assert.Equal(ErrorNumber.NoSupport, cause.Code);
    }

    [Fact]
    public async Task Errors_wrapped_the_way_the_hypervisor_wraps_them_are_still_recognised()
    {
        using var node = WorkNode();
        using var connect = Connect.Open(node.Uri);
        // What LibvirtHypervisor would do: look the domain up for each call and wrap libvirt's errors.
        var transport = new LibvirtAgentTransport("work", call =>
        {
            try
            {
                using var domain = connect.LookupDomainByName("work");
                return call(domain);
            }
            catch (LibvirtException e)
            {
                throw new HypervisorException(e.Message, e);
            }
        });

        var error = await Assert.ThrowsAsync<GuestAgentUnavailableException>(() =>
            new GuestAgent(transport).PingAsync());

        Assert.Contains("not supported by the connection driver", error.Message);
        Assert.Equal("work", transport.DomainName);
    }

    [Fact]
    public async Task A_cancelled_command_returns_at_once()
    {
        using var node = WorkNode();
        using var connect = Connect.Open(node.Uri);
        using var work = connect.LookupDomainByName("work");
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            new GuestAgent(LibvirtAgentTransport.ForDomain(work)).PingAsync(cancelled.Token));
    }
}

// The network map rendered with bUnit over the real monitor and inventory; the hypervisor is the in-memory fake, which
// raises lifecycle events as libvirt does. The seeded estate: sys-net (running) provides network to work (running)
// and devbox; the templates and vault have no netvm; default-dvm is internal.
using QubesWeb.Hypervisor.Domains;
using NetworkMapPage = QubesWeb.Components.Pages.Network.NetworkMapPage;

namespace QubesWeb.ComponentTests;

public sealed class NetworkMapTests : ConsoleTestContext
{
    private static string[] ClientsOf(IRenderedComponent<NetworkMapPage> cut, string provider) =>
        cut.FindAll($"li[data-qube='{provider}'] > ul > li").Select(e => e.GetAttribute("data-qube")!).ToArray();

    [Fact]
    public void The_map_hangs_each_qube_from_its_netvm_under_the_uplink_and_lists_the_offline_ones()
    {
        var cut = Render<NetworkMapPage>();

        cut.WaitForAssertion(() =>
        {
            var top = cut.FindAll("#network-map > ul > li").Select(e => e.GetAttribute("data-qube")!).ToArray();
            Assert.Equal(["sys-net"], top);
            Assert.Equal(["devbox", "work"], ClientsOf(cut, "sys-net"));
            var offline = cut.Find("#network-offline").TextContent;
            Assert.Contains("vault", offline);
            Assert.Contains("fedora-42", offline);
            Assert.Contains("Templates never get a netvm", offline);
        }, Wait);
        // dom0 is on no network, and a hidden (internal) qube is not shown anywhere.
        Assert.DoesNotContain("dom0", cut.Markup);
        Assert.DoesNotContain("default-dvm", cut.Markup);
        Assert.Equal("3", cut.Find("#network-map").GetAttribute("data-connected"));
        Assert.Equal("/templates/fedora-42", cut.Find("#network-offline a[href*='fedora-42']").GetAttribute("href"));
    }

    [Fact]
    public void A_provider_says_which_running_qubes_it_would_cut_off_and_follows_a_start_without_a_reload()
    {
        var cut = Render<NetworkMapPage>();
        IElement Cut() => cut.Find("li[data-qube='sys-net'] > .qw-netmap-node [data-cut]");

        cut.WaitForAssertion(() =>
        {
            Assert.Equal("1", Cut().GetAttribute("data-cut"));
            Assert.Contains("work", Cut().TextContent);
            Assert.DoesNotContain("devbox", Cut().TextContent);
        }, Wait);

        Hypervisor.Start("devbox");

        cut.WaitForAssertion(() =>
        {
            Assert.Equal("2", Cut().GetAttribute("data-cut"));
            Assert.Contains("devbox", Cut().TextContent);
            Assert.Equal("running", cut.Find("li[data-qube='devbox'] [data-state]").GetAttribute("data-state"));
        }, Wait);
    }

    [Fact]
    public async Task A_qube_whose_firewall_drops_traffic_is_marked_and_a_change_shows_without_a_reload()
    {
        var cut = Render<NetworkMapPage>();
        cut.WaitForAssertion(() => Assert.Single(cut.FindAll("li[data-qube='work']")), Wait);
        Assert.Empty(cut.FindAll("[data-firewall]"));

        await Services.GetRequiredService<QubesWeb.Services.Qubes.QubeCommands>().SetFirewallAsync(new QubesWeb.Data.Qubes.QubeFirewall("work",
            QubesWeb.Hypervisor.Networks.FirewallAction.Accept,
            [new(new QubesWeb.Hypervisor.Networks.FirewallRuleSpec(QubesWeb.Hypervisor.Networks.FirewallAction.Drop, "10.0.0.0/8"))]));
        cut.WaitForAssertion(() => Assert.Equal("filtered", cut.Find("li[data-qube='work'] [data-firewall]").GetAttribute("data-firewall")), Wait);

        await Services.GetRequiredService<QubesWeb.Services.Qubes.QubeCommands>().SetFirewallAsync(new QubesWeb.Data.Qubes.QubeFirewall("work",
            QubesWeb.Hypervisor.Networks.FirewallAction.Drop, []));
        cut.WaitForAssertion(() => Assert.Equal("firewall: limited", cut.Find("li[data-qube='work'] [data-firewall]").TextContent.Trim()), Wait);
        Assert.Empty(cut.FindAll("li[data-qube='devbox'] [data-firewall]"));
    }
}

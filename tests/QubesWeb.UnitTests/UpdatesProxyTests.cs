// A template's only way online: its UpdateVM's updates proxy, with a firewall that lets only the proxy through, and
// the interface the job plugs in found in the guest by its MAC.
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Networks;
using QubesWeb.Services.Networks;
using QubesWeb.Services.Updates;

namespace QubesWeb.UnitTests;

public sealed class UpdatesProxyTests
{
    private static Qube Q(string name, QubeClass cls, string ip, bool provides = false) =>
        new() { Name = name, Class = cls, IpAddress = ip, MacAddress = QubeAddresses.MacFor(ip), ProvidesNetwork = provides, Label = new Label { Name = "red", Color = "#e53935" } };

    [Fact]
    public void A_template_goes_through_its_own_UpdateVM_or_the_default_and_its_firewall_lets_only_the_proxy_through()
    {
        var sysNet = Q("sys-net", QubeClass.AppVM, "10.137.0.3", provides: true);
        var vpn = Q("sys-vpn", QubeClass.AppVM, "10.137.0.9", provides: true);
        var template = Q("fedora-42", QubeClass.TemplateVM, "10.137.0.2");

        var route = UpdatesProxy.RouteOf(template, sysNet);
        Assert.Equal(new UpdatesRoute("fedora-42", "sys-net", true, "10.137.0.3", 8082), route);
        Assert.Contains("http_proxy=http://10.137.0.3:8082/", route.Environment);
        Assert.Contains("HTTPS_PROXY=http://10.137.0.3:8082/", route.Environment);

        template.UpdateVm = vpn;
        route = UpdatesProxy.RouteOf(template, sysNet);
        Assert.Equal(("sys-vpn", false), (route.UpdateVm, route.IsDefault));

        var firewall = UpdatesProxy.FirewallOf(route);
        Assert.Equal(FirewallAction.Drop, firewall.Policy);
        Assert.Equal([new FirewallRuleSpec(FirewallAction.Accept, "10.137.0.9", FirewallProtocol.Tcp, 8082)], firewall.Rules);
        var nic = UpdatesProxy.InterfaceOf(template, vpn);
        Assert.Equal(("qw-sys-vpn", "00:16:3e:5e:00:02", true, "10.137.0.2", "qw-fw-fedora-42"), (nic.Network, nic.Mac, nic.Isolated, nic.FilterIp, nic.Firewall));
    }

    [Fact]
    public void Without_an_UpdateVM_or_for_a_qube_that_is_not_a_template_the_route_is_refused_with_what_to_do()
    {
        var template = Q("fedora-42", QubeClass.TemplateVM, "10.137.0.2");
        Assert.Contains("choose one on its page", Assert.Throws<QubeRuleException>(() => UpdatesProxy.RouteOf(template, null)).Message);
        Assert.Contains("does not provide network", Assert.Throws<QubeRuleException>(() => UpdatesProxy.RouteOf(template, Q("work", QubeClass.AppVM, "10.137.0.5"))).Message);
        Assert.Contains("updates through its own netvm", Assert.Throws<QubeRuleException>(() => UpdatesProxy.RouteOf(Q("dev", QubeClass.StandaloneVM, "10.137.0.6"), null)).Message);
    }

    [Fact]
    public void The_plugged_interface_is_found_by_its_MAC_in_what_ip_link_says_and_nothing_else_passes_for_a_name()
    {
        const string output = """
            1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
            2: enp1s0: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN mode DEFAULT group default qlen 1000\    link/ether 00:16:3e:5e:00:02 brd ff:ff:ff:ff:ff:ff
            3: eth9@if4: <BROADCAST> mtu 1500 qdisc noop state DOWN\    link/ether 00:16:3E:5E:00:07 brd ff:ff:ff:ff:ff:ff
            4: evil;rm -rf: <BROADCAST> mtu 1500\    link/ether 00:16:3e:5e:00:08 brd ff:ff:ff:ff:ff:ff
            """;
        Assert.Equal("enp1s0", TemplateUpdateNetwork.InterfaceWithMac(output, "00:16:3e:5e:00:02"));
        Assert.Equal("eth9", TemplateUpdateNetwork.InterfaceWithMac(output, "00:16:3e:5e:00:07"));
        Assert.Null(TemplateUpdateNetwork.InterfaceWithMac(output, "00:16:3e:5e:00:08"));
        Assert.Null(TemplateUpdateNetwork.InterfaceWithMac(output, "00:16:3e:5e:00:09"));
    }
}

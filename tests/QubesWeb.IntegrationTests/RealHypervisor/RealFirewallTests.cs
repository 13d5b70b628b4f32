// A qube's firewall as the console's hypervisor layer defines it on a real libvirtd: its filter (anti-spoofing, the
// rules, the policy) defined once and again only when the rules change, applied at once to a running guest's
// interface in the host's iptables and ebtables, and kept while an interface uses it.
using System.Xml.Linq;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Networks;
using QubesWeb.Hypervisor.Libvirt;

namespace QubesWeb.IntegrationTests.RealHypervisor;

public sealed class RealFirewallTests(RealLibvirtd daemon, TestGuest guest) : IClassFixture<RealLibvirtd>, IClassFixture<TestGuest>
{
    [Fact]
    public async Task A_qubes_firewall_is_defined_once_applied_to_its_running_interface_and_an_edit_reaches_it_at_once()
    {
        _ = daemon; // started by the fixture
        var id = Guid.NewGuid().ToString("N")[..8];
        // Not a "qw-" link: a console of another test on this daemon removes the links its inventory does not want.
        string linkName = "qwt-link-" + id, name = "qwt-fw-" + id, qube = "qwt" + id;
        var firewall = new FirewallSpec(qube, FirewallAction.Drop,
            [new FirewallRuleSpec(FirewallAction.Accept, "10.137.0.1", FirewallProtocol.Tcp, 8082),
             new FirewallRuleSpec(FirewallAction.Drop, "10.137.0.0/16", FirewallProtocol.Udp, 5000, 5010)]);
        using var hypervisor = RealLibvirtd.OpenHypervisor();
        using var connect = Connect.Open(RealLibvirtd.Uri);
        using var link = connect.DefineNetworkXml(new XElement("network", new XElement("name", linkName), new XElement("bridge", new XAttribute("stp", "off"))).ToString());
        try
        {
            // The guest's interface as the console writes it for a client: isolated, its firewall with its address and
            // MAC. The domain is defined first, so the filter is in use from its first moment (another console's
            // reconciliation removes a filter of its prefix that no domain names).
            var xml = XDocument.Parse(guest.DomainXml(name));
            xml.Root!.Element("devices")!.Add(NetworkXml.Interface(new InterfaceSpec(linkName, "00:16:3e:5e:00:05", isolated: true, "10.137.0.5", firewall.Name), "virtio"));
            using var domain = connect.DefineDomainXml(xml.ToString());
            Assert.Equal(FirewallApply.Applied, hypervisor.DefineFirewallIfChanged(firewall));
            // As libvirt gives it back, it still describes these rules: no redefinition for nothing.
            Assert.Equal(FirewallApply.Unchanged, hypervisor.DefineFirewallIfChanged(firewall));
            Assert.Contains(firewall.Name, hypervisor.ListFirewalls());
            Assert.DoesNotContain("clean-traffic", hypervisor.ListFirewalls());
            // Named by a halted domain's definition: kept, or that domain could not start.
            Assert.False(hypervisor.RemoveFirewall(firewall.Name));

            link.Create();
            domain.Create();
            var tap = XElement.Parse(domain.GetXmlDesc()).Element("devices")!.Elements("interface").Single().Element("target")!.Attribute("dev")!.Value;

            var ip = await RunAsync("iptables", "-S");
            Assert.Contains(ip.Split('\n'), l => l.Contains(tap) && l.Contains("10.137.0.1") && l.Contains("--dport 8082") && l.Contains("RETURN"));
            Assert.Contains(ip.Split('\n'), l => l.Contains(tap) && l.Contains("10.137.0.0/16") && l.Contains("5000:5010") && l.Contains("DROP"));
            var ebtables = await RunAsync("ebtables", "-t", "nat", "-L");
            Assert.Contains("-p IPv4 --ip-src 10.137.0.5 -j RETURN\n-j DROP", ebtables);

            // An edit: the running interface has the new rules, without a restart or a new definition of the domain.
            var edited = new FirewallSpec(qube, FirewallAction.Drop, [new FirewallRuleSpec(FirewallAction.Accept, "10.137.0.1", FirewallProtocol.Tcp, 8083)]);
            Assert.Equal(FirewallApply.Applied, hypervisor.DefineFirewallIfChanged(edited));
            ip = await RunAsync("iptables", "-S");
            Assert.Contains(ip.Split('\n'), l => l.Contains(tap) && l.Contains("--dport 8083"));
            Assert.DoesNotContain("--dport 8082", ip);
            Assert.DoesNotContain("5000:5010", ip);
            Assert.False(hypervisor.RemoveFirewall(firewall.Name));

            domain.Destroy();
            domain.Undefine();
            Assert.True(hypervisor.RemoveFirewall(firewall.Name));
            Assert.DoesNotContain(firewall.Name, hypervisor.ListFirewalls());
            Assert.DoesNotContain(tap, await RunAsync("iptables", "-S"));
        }
        finally
        {
            RealLibvirtd.Remove(name);
            if (link.IsActive) link.Destroy();
            link.Undefine();
            using var left = connect.TryLookupNWFilterByName(firewall.Name);
            left?.Undefine();
        }
    }

    private static async Task<string> RunAsync(string tool, params string[] args) =>
        (await Hypervisor.Storage.ProcessRunner.RunCheckedAsync(tool, args)).StandardOutput;
}

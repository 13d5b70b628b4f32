// A qube's private link to its netvm as the binding makes it on a real libvirtd: a network with no address on the host
// (dom0 is on no network), and a client's interface hot-plugged onto it with its bridge port isolated, so clients of
// one netvm cannot reach each other (Qubes' point-to-point vifs). The test driver has no hot-plug.
using System.Net.NetworkInformation;
using System.Xml.Linq;
using QubesWeb.Hypervisor.Libvirt;

namespace QubesWeb.IntegrationTests.RealHypervisor;

public sealed class RealNetworkTests(RealLibvirtd daemon, TestGuest guest) : IClassFixture<RealLibvirtd>, IClassFixture<TestGuest>
{
    [Fact]
    public async Task An_isolated_port_on_a_private_link_is_hot_plugged_into_a_running_guest_and_unplugged_again()
    {
        _ = daemon; // started by the fixture
        var id = Guid.NewGuid().ToString("N")[..8];
        string linkName = "qwt-link-" + id, name = "qwt-nic-" + id;
        const string mac = "52:54:00:5e:6c:0a";
        var nic = new XElement("interface", new XAttribute("type", "network"),
            new XElement("mac", new XAttribute("address", mac)),
            new XElement("source", new XAttribute("network", linkName)),
            new XElement("model", new XAttribute("type", "virtio")),
            new XElement("port", new XAttribute("isolated", "yes"))).ToString();
        using var connect = Connect.Open(RealLibvirtd.Uri);
        using var link = connect.DefineNetworkXml(new XElement("network", new XElement("name", linkName), new XElement("bridge", new XAttribute("stp", "off"))).ToString());
        try
        {
            link.Create();
            var bridge = XElement.Parse(link.GetXmlDesc()).Element("bridge")!.Attribute("name")!.Value;
            // No address on the host's side of the link.
            Assert.Null(XElement.Parse(link.GetXmlDesc()).Element("ip"));
            Assert.Empty(NetworkInterface.GetAllNetworkInterfaces().Single(n => n.Name == bridge).GetIPProperties().UnicastAddresses);

            using var domain = connect.DefineDomainXml(guest.DomainXml(name));
            domain.Create();
            // Unplugging takes the guest's part (an ACPI eject): it must have booted to answer it.
            await Eventually.UntilAsync(() => AgentAnswers(domain), "the guest to boot", TimeSpan.FromSeconds(120));

            domain.AttachDevice(nic, DomainDeviceModifyFlags.Live);

            var plugged = XElement.Parse(domain.GetXmlDesc()).Element("devices")!.Elements("interface").Single();
            Assert.Equal(mac, plugged.Element("mac")!.Attribute("address")!.Value);
            var tap = plugged.Element("target")!.Attribute("dev")!.Value;
            Assert.Equal(bridge, Path.GetFileName(File.ResolveLinkTarget($"/sys/class/net/{tap}/master", false)!.FullName));
            Assert.Equal("1", File.ReadAllText($"/sys/class/net/{tap}/brport/isolated").Trim());

            domain.DetachDevice(nic, DomainDeviceModifyFlags.Live);
            await Eventually.UntilAsync(() => !XElement.Parse(domain.GetXmlDesc()).Element("devices")!.Elements("interface").Any(),
                "the interface to be unplugged", TimeSpan.FromSeconds(60));
            Assert.False(Directory.Exists($"/sys/class/net/{tap}"));
        }
        finally
        {
            RealLibvirtd.Remove(name);
            if (link.IsActive) link.Destroy();
            link.Undefine();
        }
    }

    [Fact]
    public async Task A_qubes_firewall_is_enforced_by_the_host_on_its_interface_with_anti_spoofing_and_an_edit_applies_at_once()
    {
        _ = daemon; // started by the fixture
        var id = Guid.NewGuid().ToString("N")[..8];
        string linkName = "qwt-link-" + id, name = "qwt-fw-" + id, filterName = "qwt-fw-" + id;
        using var connect = Connect.Open(RealLibvirtd.Uri);
        using var link = connect.DefineNetworkXml(new XElement("network", new XElement("name", linkName), new XElement("bridge", new XAttribute("stp", "off"))).ToString());
        NWFilter? filter = null;
        try
        {
            filter = connect.DefineNWFilterXml(Firewall(filterName, 8082));
            Assert.Equal(filterName, filter.Name);
            Assert.Contains(connect.ListAllNWFilters(), f => f.Name == "clean-traffic");
            link.Create();
            using var domain = connect.DefineDomainXml(guest.DomainXml(name));
            domain.Create();
            await Eventually.UntilAsync(() => AgentAnswers(domain), "the guest to boot", TimeSpan.FromSeconds(120));
            var nic = new XElement("interface", new XAttribute("type", "network"),
                new XElement("mac", new XAttribute("address", "52:54:00:5e:6c:0b")),
                new XElement("source", new XAttribute("network", linkName)),
                new XElement("model", new XAttribute("type", "virtio")),
                new XElement("filterref", new XAttribute("filter", filterName),
                    new XElement("parameter", new XAttribute("name", "IP"), new XAttribute("value", "10.137.0.5")))).ToString();

            domain.AttachDevice(nic, DomainDeviceModifyFlags.Live);
            var tap = XElement.Parse(domain.GetXmlDesc()).Element("devices")!.Elements("interface").Single().Element("target")!.Attribute("dev")!.Value;

            // The rules live in the host's tables, per tap: the qube's own rule, and clean-traffic's MAC and IP anti-spoofing.
            var ip = await RunAsync("iptables", "-S");
            Assert.Contains($"-N FO-{tap}", ip);
            Assert.Contains(ip.Split('\n'), l => l.Contains(tap) && l.Contains("10.137.0.1") && l.Contains("--dport 8082"));
            var mac = await RunAsync("ebtables", "-t", "nat", "-L");
            Assert.Contains($"libvirt-I-{tap}", mac);
            // Frames from another MAC or packets from another address than its own are dropped.
            Assert.Contains($"Bridge chain: I-{tap}-mac, entries: 2, policy: RETURN\n-s 52:54:00:5e:6c:0b -j RETURN\n-j DROP", mac);
            Assert.Contains("-p IPv4 --ip-src 10.137.0.5 -j RETURN\n-j DROP", mac);

            // An edit of the rules reaches the running interface without a restart.
            using (connect.DefineNWFilterXml(Firewall(filterName, 8083, filter.Uuid))) { }
            ip = await RunAsync("iptables", "-S");
            Assert.Contains(ip.Split('\n'), l => l.Contains(tap) && l.Contains("--dport 8083"));
            Assert.DoesNotContain("--dport 8082", ip);

            domain.DetachDevice(nic, DomainDeviceModifyFlags.Live);
            await Eventually.UntilAsync(() => !XElement.Parse(domain.GetXmlDesc()).Element("devices")!.Elements("interface").Any(),
                "the interface to be unplugged", TimeSpan.FromSeconds(60));
            await Eventually.UntilAsync(async () => !(await RunAsync("iptables", "-S")).Contains(tap), "the tap's rules to go", TimeSpan.FromSeconds(30));
        }
        finally
        {
            RealLibvirtd.Remove(name);
            if (link.IsActive) link.Destroy();
            link.Undefine();
            filter?.Undefine();
            filter?.Dispose();
        }
    }

    /// <summary>
    /// A qube's firewall as dom0 enforces it: anti-spoofing (clean-traffic: its own MAC and IP only), then its rules
    /// (here one: TCP to 10.137.0.1 on <paramref name="port"/>), then drop all.
    /// </summary>
    private static string Firewall(string name, int port, Guid? uuid = null) =>
        new XElement("filter", new XAttribute("name", name), new XAttribute("chain", "root"),
            uuid is null ? null : new XElement("uuid", uuid.Value.ToString("D")),
            new XElement("filterref", new XAttribute("filter", "clean-traffic")),
            new XElement("rule", new XAttribute("action", "accept"), new XAttribute("direction", "out"), new XAttribute("priority", "500"),
                new XElement("tcp", new XAttribute("dstipaddr", "10.137.0.1"), new XAttribute("dstportstart", port))),
            new XElement("rule", new XAttribute("action", "drop"), new XAttribute("direction", "inout"), new XAttribute("priority", "1000"),
                new XElement("all"))).ToString();

    private static async Task<string> RunAsync(string tool, params string[] args) =>
        (await Hypervisor.Storage.ProcessRunner.RunCheckedAsync(tool, args)).StandardOutput;

    private static bool AgentAnswers(Domain domain)
    {
        try
        {
            QemuAgent.Command(domain, """{"execute":"guest-ping"}""", 5);
            return true;
        }
        catch (LibvirtException)
        {
            return false;
        }
    }
}

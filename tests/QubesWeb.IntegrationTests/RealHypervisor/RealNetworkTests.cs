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

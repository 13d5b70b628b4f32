// Virtual networks and guest interfaces on them, against a private test-driver node: what a qube's private link to
// its netvm is made of (a network with no address on the host, each client's port isolated from the others').
using System.Xml.Linq;
using QubesWeb.Hypervisor.Libvirt;

namespace QubesWeb.IntegrationTests.Libvirt;

public sealed class NetworkTests
{
    /// <summary>A network with no forward mode and no address: the host (dom0) is on no network, as in Qubes.</summary>
    private static string PrivateLink(string name) =>
        new XElement("network", new XElement("name", name), new XElement("bridge", new XAttribute("stp", "off"))).ToString();

    private static string Interface(string network, string mac) =>
        new XElement("interface", new XAttribute("type", "network"),
            new XElement("mac", new XAttribute("address", mac)),
            new XElement("source", new XAttribute("network", network)),
            new XElement("port", new XAttribute("isolated", "yes"))).ToString();

    [Fact]
    public void A_network_is_defined_started_listed_stopped_and_undefined()
    {
        using var node = new TestNode();
        using var connect = Connect.Open(node.Uri);

        using (var link = connect.DefineNetworkXml(PrivateLink("qw-sys-firewall")))
        {
            Assert.Equal("qw-sys-firewall", link.Name);
            Assert.True(link.IsPersistent);
            Assert.False(link.IsActive);
            Assert.DoesNotContain(connect.ListAllNetworks(ConnectListAllNetworksFlags.Active), n => n.Name == "qw-sys-firewall");

            link.Create();
            link.Autostart = true;

            Assert.True(link.IsActive);
            Assert.True(link.Autostart);
            Assert.Contains(connect.ListAllNetworks(ConnectListAllNetworksFlags.Active), n => n.Name == "qw-sys-firewall");
            var xml = XElement.Parse(link.GetXmlDesc());
            Assert.Equal(link.Uuid, Guid.Parse(xml.Element("uuid")!.Value));
            Assert.Null(xml.Element("ip"));
            Assert.Null(xml.Element("forward"));

            link.Destroy();
            Assert.False(link.IsActive);
            link.Undefine();
        }
        Assert.Null(connect.TryLookupNetworkByName("qw-sys-firewall"));
    }

    [Fact]
    public void Looking_up_an_unknown_network_or_a_name_holding_NUL_finds_none_and_bad_xml_says_why()
    {
        using var node = new TestNode();
        using var connect = Connect.Open(node.Uri);
        using (connect.DefineNetworkXml(PrivateLink("qw-net"))) { }

        Assert.Null(connect.TryLookupNetworkByName("qw-none"));
        Assert.Null(connect.TryLookupNetworkByName("qw-net\0x"));
        Assert.NotNull(connect.TryLookupNetworkByName("qw-net"));
        var error = Assert.Throws<LibvirtException>(() => connect.DefineNetworkXml("<network><bridge/></network>"));
        Assert.Contains("name", error.Message);
    }

    [Fact]
    public void A_domain_defined_with_an_interface_on_a_private_link_keeps_its_mac_and_isolated_port()
    {
        using var node = new TestNode();
        using var connect = Connect.Open(node.Uri);
        using var link = connect.DefineNetworkXml(PrivateLink("qw-sys-firewall"));
        link.Create();
        var nic = "<devices>" + Interface("qw-sys-firewall", "00:16:3e:5e:6c:0a") + "</devices>";

        using var client = connect.DefineDomainXml(TestNode.DomainXml(new TestNodeDomain("client", Guid.NewGuid()), nic));
        client.Create();

        // Live hot-plug is the qemu driver's (the real-hypervisor lane proves it); the test driver keeps the definition.
        var attached = XElement.Parse(client.GetXmlDesc()).Element("devices")!.Elements("interface").Single();
        Assert.Equal("qw-sys-firewall", attached.Element("source")!.Attribute("network")!.Value);
        Assert.Equal("00:16:3e:5e:6c:0a", attached.Element("mac")!.Attribute("address")!.Value);
        Assert.Equal("yes", attached.Element("port")!.Attribute("isolated")!.Value);
    }
}

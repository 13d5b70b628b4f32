// Link and interface specs refuse names and addresses that are not theirs, with a sentence; what they accept is
// written into libvirt's XML with an XML API, and the XML round-trips through the fingerprint the console compares.
using System.Xml.Linq;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Networks;
using QubesWeb.Services.Networks;

namespace QubesWeb.UnitTests;

public sealed class NetworkSpecTests
{
    [Theory]
    [InlineData("sys-net")]
    [InlineData("qw-")]
    [InlineData("qw-1abc")]
    [InlineData("qw-a/b")]
    [InlineData("qw-a b")]
    [InlineData("qw-a</name><ip/>")]
    [InlineData("qw-abcdefghijabcdefghijabcdefghijkl")]
    public void A_link_name_that_is_not_qw_and_a_qube_name_is_refused(string name)
    {
        var e = Assert.Throws<ArgumentException>(() => new LinkSpec(name, "qwbr-0-2"));
        Assert.Contains("is not a link name", e.Message);
    }

    [Theory]
    [InlineData("virbr0")]
    [InlineData("qwbr-0123456789a")]
    [InlineData("qwbr-A-2")]
    [InlineData("qwbr-0 2")]
    public void A_bridge_name_that_is_not_the_consoles_or_is_over_15_characters_is_refused(string bridge)
    {
        var e = Assert.Throws<ArgumentException>(() => new LinkSpec("qw-sys-net", bridge));
        Assert.Contains("is not a bridge name", e.Message);
    }

    [Theory]
    [InlineData("qw-sys-net", "00:16:3E:5E:00:02", "10.137.0.2", "MAC")]
    [InlineData("qw-sys-net", "00:16:3e:5e:00", "10.137.0.2", "MAC")]
    [InlineData("qw-sys-net", "00:16:3e:5e:00:02", "10.137.0.02", "IPv4")]
    [InlineData("qw-sys-net", "00:16:3e:5e:00:02", "fe80::1", "IPv4")]
    [InlineData("a/b", "00:16:3e:5e:00:02", null, "network name")]
    [InlineData("", "00:16:3e:5e:00:02", null, "network name")]
    public void An_interface_with_a_bad_network_mac_or_ip_is_refused(string network, string mac, string? ip, string said)
    {
        var e = Assert.Throws<ArgumentException>(() => new InterfaceSpec(network, mac, isolated: true, filterIp: ip));
        Assert.Contains(said, e.Message);
    }

    [Fact]
    public void A_link_is_a_bridge_with_no_address_and_no_forward()
    {
        var xml = XElement.Parse(NetworkXml.Link(new LinkSpec("qw-sys-firewall", "qwbr-0-3")));
        Assert.Equal("qw-sys-firewall", xml.Element("name")!.Value);
        Assert.Equal("qwbr-0-3", xml.Element("bridge")!.Attribute("name")!.Value);
        Assert.Empty(xml.Elements("ip"));
        Assert.Empty(xml.Elements("forward"));
    }

    [Fact]
    public void A_providers_bridge_is_named_after_its_address_whatever_its_name()
    {
        var provider = new Qube { Name = "a-very-long-network-qube-name-x", ProvidesNetwork = true, IpAddress = QubeAddresses.IpAt(QubeAddresses.Capacity - 1) };
        var link = QubeNetwork.LinkOf(provider);
        Assert.Equal("qw-a-very-long-network-qube-name-x", link.Name);
        Assert.Equal("qwbr-255-254", link.Bridge);
        Assert.Throws<QubeRuleException>(() => QubeNetwork.LinkOf(new Qube { Name = "work", IpAddress = "10.137.0.5" }));
        Assert.Throws<QubeRuleException>(() => QubeNetwork.LinkOf(new Qube { Name = "sys-net", ProvidesNetwork = true }));
    }

    [Fact]
    public void A_domains_interfaces_are_rendered_in_order_and_its_definition_describes_itself()
    {
        var spec = new DomainSpec("sys-firewall", Guid.NewGuid(), 400, 2, new QubeMetadata("AppVM", "green", "fedora-42"), [],
            Interfaces:
            [
                new InterfaceSpec("qw-sys-net", "00:16:3e:5e:00:05", isolated: true, filterIp: "10.137.0.5"),
                new InterfaceSpec("qw-sys-firewall", "00:16:3e:5f:00:05", isolated: false, filterIp: null),
            ]);
        var xml = DomainXml.Build(spec, "kvm");
        var nics = XDocument.Parse(xml).Root!.Element("devices")!.Elements("interface").ToList();

        Assert.Equal(["qw-sys-net", "qw-sys-firewall"], nics.Select(n => n.Element("source")!.Attribute("network")!.Value));
        Assert.Equal("yes", nics[0].Element("port")!.Attribute("isolated")!.Value);
        Assert.Equal(["IP=10.137.0.5", "MAC=00:16:3e:5e:00:05"],
            nics[0].Element("filterref")!.Elements("parameter").Select(p => $"{p.Attribute("name")!.Value}={p.Attribute("value")!.Value}"));
        Assert.Null(nics[1].Element("port"));
        Assert.Null(nics[1].Element("filterref"));
        Assert.True(DomainXml.Describes(xml, spec, "kvm"));
        // Moved to another link: no longer what libvirt has.
        Assert.False(DomainXml.Describes(xml, spec with { Interfaces = [new InterfaceSpec("qw-other", "00:16:3e:5e:00:05", true, "10.137.0.5")] }, "kvm"));
        Assert.False(DomainXml.Describes(xml, spec with { Interfaces = [] }, "kvm"));
    }
}

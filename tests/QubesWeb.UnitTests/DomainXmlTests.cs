// Domain XML is built with an XML API: names, labels and notes carrying markup stay text, and never add an element.
using System.Xml.Linq;
using QubesWeb.Hypervisor.Domains;

namespace QubesWeb.UnitTests;

public sealed class DomainXmlTests
{
    public static TheoryData<string> Hostile => new()
    {
        "'\"&<>",
        "</name><name>x",
        "x]]>y",
        "<!ENTITY xxe SYSTEM \"file:///etc/passwd\">",
        "<![CDATA[boom]]>",
        "&xxe;",
        "<img src=x onerror=alert(1)>",
        "\"><svg onload=alert(1)>",
        "</script>",
    };

    private static DomainSpec Spec(string name, string label = "red", string? template = "fedora-42", string? description = null) =>
        new(name, Guid.Parse("1f0e9c55-2b1a-4a8f-9d3b-2e4c6a8b0c11"), 400, 2,
            new QubeMetadata("AppVM", label, template),
            [new DiskSpec("/pool/x/private.qcow2", "vdb")], description);

    [Theory]
    [MemberData(nameof(Hostile))]
    public void A_hostile_name_stays_the_text_of_exactly_one_name_element(string value)
    {
        var xml = DomainXml.Build(Spec(value), "test");

        var root = XDocument.Parse(xml).Root!;
        Assert.Equal("domain", root.Name.LocalName);
        var name = Assert.Single(root.Descendants("name"));
        Assert.Same(root, name.Parent);
        Assert.Equal(value, name.Value);
        Assert.Single(root.Elements("uuid"));
        Assert.Single(root.Elements("devices"));
        Assert.DoesNotContain("<!ENTITY", xml);
        Assert.DoesNotContain("<!DOCTYPE", xml);
    }

    [Theory]
    [MemberData(nameof(Hostile))]
    public void Hostile_label_template_and_description_round_trip_as_text(string value)
    {
        var xml = DomainXml.Build(Spec("work", label: value, template: value, description: value), "kvm");

        var root = XDocument.Parse(xml).Root!;
        Assert.Equal("work", Assert.Single(root.Descendants("name")).Value);
        Assert.Equal(value, Assert.Single(root.Elements("description")).Value);
        var metadata = DomainXml.ParseMetadata(xml);
        Assert.Equal(new QubeMetadata("AppVM", value, value), metadata);
        // The hostile text added no element anywhere: the metadata holds class, label, template, nothing else.
        var qube = Assert.Single(Assert.Single(root.Elements("metadata")).Elements());
        Assert.Equal(["class", "label", "template"], qube.Elements().Select(e => e.Name.LocalName));
        Assert.Equal(DomainXml.MetadataNamespace, qube.Name.NamespaceName);
    }

    [Fact]
    public void Metadata_is_namespaced_and_parsed_back()
    {
        var xml = DomainXml.Build(Spec("work", "blue", "debian-13"), "test");

        Assert.Equal(new QubeMetadata("AppVM", "blue", "debian-13"), DomainXml.ParseMetadata(xml));
        var qube = XDocument.Parse(xml).Root!.Element("metadata")!.Elements().Single();
        Assert.Equal(XName.Get("qube", DomainXml.MetadataNamespace), qube.Name);
    }

    [Fact]
    public void A_qube_without_a_template_has_no_template_element_in_its_metadata()
    {
        var xml = DomainXml.Build(Spec("devbox", template: null), "test");

        Assert.Null(DomainXml.ParseMetadata(xml)!.Template);
        Assert.Empty(XDocument.Parse(xml).Descendants(XName.Get("template", DomainXml.MetadataNamespace)));
    }

    [Fact]
    public void A_domain_without_qube_metadata_parses_to_null()
    {
        Assert.Null(DomainXml.ParseMetadata("<domain type='test'><name>legacy-vm</name></domain>"));
        Assert.Null(DomainXml.ParseMetadata("<domain type='test'><name>legacy-vm</name><metadata><other xmlns='urn:x'/></metadata></domain>"));
    }

    [Fact]
    public void Without_a_description_there_is_no_description_element()
    {
        var xml = DomainXml.Build(Spec("work"), "test");

        Assert.Empty(XDocument.Parse(xml).Root!.Elements("description"));
    }

    [Fact]
    public void Memory_vcpus_uuid_disks_and_domain_type_are_written()
    {
        var xml = DomainXml.Build(Spec("work"), "kvm");

        var root = XDocument.Parse(xml).Root!;
        Assert.Equal("kvm", root.Attribute("type")!.Value);
        Assert.Equal("1f0e9c55-2b1a-4a8f-9d3b-2e4c6a8b0c11", root.Element("uuid")!.Value);
        Assert.Equal("400", root.Element("memory")!.Value);
        Assert.Equal("MiB", root.Element("memory")!.Attribute("unit")!.Value);
        Assert.Equal("2", root.Element("vcpu")!.Value);
        var disk = Assert.Single(root.Element("devices")!.Elements("disk"));
        Assert.Equal("/pool/x/private.qcow2", disk.Element("source")!.Attribute("file")!.Value);
        Assert.Equal("virtio", disk.Element("target")!.Attribute("bus")!.Value);
    }

    [Theory]
    [InlineData("kvm")]
    [InlineData("qemu")]
    public void A_qemu_domain_has_ACPI_and_the_guest_agents_channel(string domainType)
    {
        var root = XDocument.Parse(DomainXml.Build(Spec("work"), domainType)).Root!;

        Assert.NotNull(root.Element("features")!.Element("acpi"));
        var channel = Assert.Single(root.Element("devices")!.Elements("channel"));
        Assert.Equal("unix", channel.Attribute("type")!.Value);
        Assert.Equal("virtio", channel.Element("target")!.Attribute("type")!.Value);
        Assert.Equal("org.qemu.guest_agent.0", channel.Element("target")!.Attribute("name")!.Value);
    }

    [Theory]
    [InlineData("test")]
    [InlineData("xen")]
    public void Other_drivers_get_no_qemu_agent_channel(string domainType)
    {
        var root = XDocument.Parse(DomainXml.Build(Spec("work"), domainType)).Root!;

        Assert.Empty(root.Element("devices")!.Elements("channel"));
        Assert.Empty(root.Elements("features"));
    }

    [Fact]
    public void Xml_from_libvirt_with_a_DTD_is_refused_so_no_entity_is_expanded()
    {
        const string evil = """
            <!DOCTYPE domain [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
            <domain><name>&xxe;</name></domain>
            """;

        Assert.ThrowsAny<System.Xml.XmlException>(() => DomainXml.ParseSafe(evil));
        Assert.ThrowsAny<System.Xml.XmlException>(() => DomainXml.ParseMetadata(evil));
    }
}

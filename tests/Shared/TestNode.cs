// A private node file for libvirt's test driver: each test gets its own libvirt "host" that no other test sees.
using System.Security;
using System.Text;

namespace QubesWeb.Tests.Shared;

/// A domain prepared in the node file. RunState uses libvirt's virDomainState numbers (see TestNode.Running etc.),
/// because this helper must not depend on the binding under test.
public sealed record TestNodeDomain(string Name, Guid Uuid, int RunState = TestNode.Shutoff, ulong MemoryKiB = 131072,
    int Vcpus = 1);

public sealed class TestNode : IDisposable
{
    /// VIR_DOMAIN_RUNNING
    public const int Running = 1;
    /// VIR_DOMAIN_PAUSED
    public const int Paused = 3;
    /// VIR_DOMAIN_SHUTOFF
    public const int Shutoff = 5;

    public const string TestNamespace = "http://libvirt.org/schemas/domain/test/1.0";

    public TestNode(params TestNodeDomain[] domains)
    {
        Folder = Path.Combine(Path.GetTempPath(), "qubesweb-testnode-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Folder);
        NodeXmlPath = Path.Combine(Folder, "node.xml");
        var xml = new StringBuilder("<node>\n");
        foreach (var domain in domains)
        {
            xml.Append(DomainXml(domain)).Append('\n');
        }
        // libvirt's own NAT network, as a libvirt host has it: the uplink sys-net is plugged into (Networks:Uplink).
        xml.Append(DefaultNetwork).Append('\n');
        xml.Append("</node>\n");
        File.WriteAllText(NodeXmlPath, xml.ToString());
        // Three slashes and an absolute path; test:///default would be shared by every connection in the process.
        Uri = "test://" + NodeXmlPath;
    }

    private const string DefaultNetwork =
        "<network><name>default</name><bridge name='virbr0'/><forward mode='nat'/>"
        + "<ip address='192.168.122.1' netmask='255.255.255.0'><dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp></ip></network>";

    public string Folder { get; }
    public string NodeXmlPath { get; }
    public string Uri { get; }

    /// Domain XML accepted both inside the node file and by virDomainDefineXML. Without a runstate the test
    /// driver would start a node-file domain RUNNING.
    public static string DomainXml(TestNodeDomain domain, string? extraXml = null) =>
        $"""
          <domain type="test" xmlns:test="{TestNamespace}">
            <name>{SecurityElement.Escape(domain.Name)}</name>
            <uuid>{domain.Uuid:D}</uuid>
            <memory unit="KiB">{domain.MemoryKiB}</memory>
            <currentMemory unit="KiB">{domain.MemoryKiB}</currentMemory>
            <vcpu>{domain.Vcpus}</vcpu>
            <os><type>hvm</type></os>
            <test:runstate>{domain.RunState}</test:runstate>
            {extraXml}
          </domain>
        """;

    public void Dispose()
    {
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}

using System.Xml.Linq;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Tests.Shared;

namespace QubesWeb.IntegrationTests.Estate;

public sealed class DomainDisksTests
{
    [Fact]
    public async Task An_AppVM_is_defined_with_its_templates_root_read_only_then_its_own_private_and_volatile_volumes()
    {
        await using var host = await ConsoleHost.StartAsync();
        var xml = XDocument.Parse(host.Get<IHypervisor>().GetXml("work"));
        var disks = xml.Root!.Element("devices")!.Elements("disk")
            .Select(d => (Dev: d.Element("target")!.Attribute("dev")!.Value, File: d.Element("source")!.Attribute("file")!.Value, ReadOnly: d.Element("readonly") is not null))
            .ToList();
        var pool = Path.Combine(host.DataDir, "pool");
        Assert.Equal(
        [
            ("vda", Path.Combine(pool, "fedora-42", "root.qcow2"), true),
            ("vdb", Path.Combine(pool, "work", "private.qcow2"), false),
            ("vdc", Path.Combine(pool, "work", "volatile.qcow2"), false),
        ], disks);
    }
}

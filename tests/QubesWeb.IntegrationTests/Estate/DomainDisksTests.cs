using System.Xml.Linq;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Storage;

namespace QubesWeb.IntegrationTests.Estate;

public sealed class DomainDisksTests
{
    private static List<(string Dev, string File, bool ReadOnly)> Disks(ConsoleHost host, string name) =>
        XDocument.Parse(host.Get<IHypervisor>().GetXml(name)).Root!.Element("devices")!.Elements("disk")
            .Select(d => (d.Element("target")!.Attribute("dev")!.Value, d.Element("source")!.Attribute("file")!.Value, d.Element("readonly") is not null))
            .ToList();

    [Fact]
    public async Task An_AppVM_is_defined_with_its_root_snapshot_then_its_private_and_volatile_volumes_in_its_own_folder()
    {
        await using var host = await ConsoleHost.StartAsync();
        var pool = Path.Combine(host.DataDir, "pool");
        // The root snapshot is its own file (copy-on-write on the template's current revision), so it is writable.
        Assert.Equal(
        [
            ("vda", Path.Combine(pool, "work", RootFiles.Snapshot), false),
            ("vdb", Path.Combine(pool, "work", "private.qcow2"), false),
            ("vdc", Path.Combine(pool, "work", "volatile.qcow2"), false),
            // Its template's OS family runs cloud-init: the first-boot seed, read-only.
            ("vdd", Path.Combine(pool, "work", FirstBootSeed.FileName), true),
        ], Disks(host, "work"));
    }

    [Fact]
    public async Task A_template_is_defined_with_its_dirty_overlay_as_root()
    {
        await using var host = await ConsoleHost.StartAsync();
        var pool = Path.Combine(host.DataDir, "pool");
        Assert.Equal(
        [
            ("vda", Path.Combine(pool, "fedora-42", RootFiles.Dirty), false),
            ("vdb", Path.Combine(pool, "fedora-42", "private.qcow2"), false),
            ("vdc", Path.Combine(pool, "fedora-42", "volatile.qcow2"), false),
            ("vdd", Path.Combine(pool, "fedora-42", FirstBootSeed.FileName), true),
        ], Disks(host, "fedora-42"));
    }
}

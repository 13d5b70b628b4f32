using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;

namespace QubesWeb.Services.Estate;

/// <summary>Turns an inventory qube into the domain libvirt should have: the inventory is the source of truth.</summary>
public static class DomainSpecs
{
    public static DomainSpec From(Qube qube)
    {
        var disks = new List<DiskSpec>();
        // xvda root, xvdb private, xvdc volatile: Qubes' device order. A root's path is its runtime overlay (a
        // template's dirty overlay, an AppVM's start snapshot), made before each start: the XML never changes for one.
        foreach (var (kind, dev) in new[] { (VolumeKind.Root, "vda"), (VolumeKind.Private, "vdb"), (VolumeKind.Volatile, "vdc") })
        {
            var path = qube.Volumes.FirstOrDefault(v => v.Kind == kind)?.Path;
            if (path is not null) disks.Add(new DiskSpec(path, dev));
        }
        return new DomainSpec(
            qube.Name,
            qube.Uuid,
            qube.MemoryMiB,
            qube.VCpus,
            new QubeMetadata(qube.Class.ToString(), qube.Label.Name, qube.Template?.Name),
            disks);
    }
}

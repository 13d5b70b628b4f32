using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;

namespace QubesWeb.Services.Estate;

/// <summary>Turns an inventory qube into the domain libvirt should have: the inventory is the source of truth.</summary>
public static class DomainSpecs
{
    public static DomainSpec From(Qube qube)
    {
        var disks = new List<DiskSpec>();
        // xvda root, xvdb private, xvdc volatile: Qubes' device order.
        var root = qube.Volumes.FirstOrDefault(v => v.Kind == VolumeKind.Root)?.Path
                   ?? (qube.Class == QubeClass.AppVM ? qube.Template?.Volumes.FirstOrDefault(v => v.Kind == VolumeKind.Root)?.Path : null);
        if (root is not null) disks.Add(new DiskSpec(root, "vda", ReadOnly: qube.Class == QubeClass.AppVM));
        foreach (var (kind, dev) in new[] { (VolumeKind.Private, "vdb"), (VolumeKind.Volatile, "vdc") })
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

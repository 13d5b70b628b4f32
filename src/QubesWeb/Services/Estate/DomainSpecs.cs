using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Networks;

namespace QubesWeb.Services.Estate;

/// <summary>Turns an inventory qube into the domain libvirt should have: the inventory is the source of truth.</summary>
public static class DomainSpecs
{
    /// <param name="uplink">The libvirt network a provider with no netvm is plugged into (<see cref="NetworkOptions.Uplink"/>).</param>
    public static DomainSpec From(Qube qube, string uplink = NetworkOptions.DefaultUplink)
    {
        var disks = new List<DiskSpec>();
        // xvda root, xvdb private, xvdc volatile: Qubes' device order. A root's path is its runtime overlay (a
        // template's dirty overlay, an AppVM's start snapshot), made before each start: the XML never changes for one.
        foreach (var (kind, dev) in new[] { (VolumeKind.Root, "vda"), (VolumeKind.Private, "vdb"), (VolumeKind.Volatile, "vdc") })
        {
            var path = qube.Volumes.FirstOrDefault(v => v.Kind == kind)?.Path;
            if (path is not null) disks.Add(new DiskSpec(path, dev));
        }
        // The first-boot configuration (cloud-init's NoCloud seed), read-only, written before each start.
        if (FirstBootSeed.PathOf(qube) is { } seed) disks.Add(new DiskSpec(seed, FirstBootSeed.Target, ReadOnly: true, Format: "raw"));
        return new DomainSpec(
            qube.Name,
            qube.Uuid,
            qube.MemoryMiB,
            qube.VCpus,
            new QubeMetadata(qube.Class.ToString(), qube.Label.Name, qube.Template?.Name),
            disks,
            OemStrings: OemStrings(qube),
            Cdrom: qube.InstallMedia is { } iso ? new CdromSpec(iso, qube.BootFromMedia) : null,
            Interfaces: QubeNetwork.InterfacesOf(qube, uplink));
    }

    /// <summary>The prefix of every SMBIOS OEM string the console writes, so a guest tells them from the firmware's own.</summary>
    public const string OemPrefix = "qubesweb:";

    /// <summary>
    /// What a guest without cloud-init can learn of itself from its firmware (SMBIOS type 11, <c>dmidecode -t 11</c>),
    /// as Qubes' agents read QubesDB: one "qubesweb:KEY=VALUE" string per key, every key always present (empty when
    /// unset). The README lists the keys; a key is added, never renamed.
    /// </summary>
    public static IReadOnlyList<string> OemStrings(Qube qube) =>
    [
        $"{OemPrefix}name={qube.Name}",
        $"{OemPrefix}class={qube.Class}",
        $"{OemPrefix}label={qube.Label.Name}",
        $"{OemPrefix}template={qube.Template?.Name}",
        $"{OemPrefix}netvm={qube.NetVm?.Name}",
        $"{OemPrefix}provides-network={(qube.ProvidesNetwork ? 1 : 0)}",
        // Its own address (on its netvm's link, and a provider's on its own link too), and with a netvm the way out.
        // Empty for a qube with no interface (a template, netvm none): it has an address in the inventory, on no link.
        $"{OemPrefix}ip={(Networks.QubeNetwork.HasInterfaces(qube) ? qube.IpAddress : "")}",
        $"{OemPrefix}gateway={qube.NetVm?.IpAddress}",
        $"{OemPrefix}dns={(qube.NetVm is null ? "" : string.Join(' ', QubeAddresses.Dns))}",
        $"{OemPrefix}mac={(Networks.QubeNetwork.HasInterfaces(qube) ? qube.MacAddress : "")}",
    ];
}

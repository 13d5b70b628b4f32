namespace QubesWeb.Data.Qubes;

/// <summary>The classes of qube, as Qubes names them (core-admin qubes/vm/*.py).</summary>
public enum QubeClass
{
    AdminVM,
    TemplateVM,
    AppVM,
    StandaloneVM,
    DispVM,
}

/// <summary>
/// One qube of the inventory: how it is built. Whether it runs is libvirt's business and is never stored here.
/// </summary>
public class Qube
{
    public int Id { get; set; }
    public required string Name { get; set; }
    public QubeClass Class { get; set; }

    /// <summary>libvirt's identity of the qube's domain; kept so a redefinition is the same domain.</summary>
    public Guid Uuid { get; set; }

    public int LabelId { get; set; }
    public Label Label { get; set; } = null!;

    public int? TemplateId { get; set; }
    public Qube? Template { get; set; }

    /// <summary>The qubes whose template this is (Qubes' <c>appvms</c>).</summary>
    public List<Qube> Dependents { get; set; } = [];

    public int? NetVmId { get; set; }
    public Qube? NetVm { get; set; }
    public List<Qube> NetworkClients { get; set; } = [];

    public bool ProvidesNetwork { get; set; }

    /// <summary>
    /// A template's UpdateVM: the network provider whose updates proxy its update jobs go through (Qubes' policy
    /// qubes.UpdatesProxy). Null: the console's default (<see cref="QubeRules.DefaultUpdateVm"/>). Only templates have one.
    /// </summary>
    public int? UpdateVmId { get; set; }
    public Qube? UpdateVm { get; set; }

    /// <summary>The qube's IPv4 address on its netvm's link (10.137.x.y), chosen once at creation; null for dom0. See <see cref="QubeAddresses"/>.</summary>
    public string? IpAddress { get; set; }

    /// <summary>The MAC of the qube's interface (00:16:3e:...), chosen with <see cref="IpAddress"/>; null for dom0.</summary>
    public string? MacAddress { get; set; }

    /// <summary>What the qube's firewall does with traffic none of its <see cref="FirewallRules"/> matches: accept (Qubes' default) or drop.</summary>
    public Hypervisor.Networks.FirewallAction FirewallPolicy { get; set; } = Hypervisor.Networks.FirewallAction.Accept;

    /// <summary>The qube's firewall rules, in the order they are tried (<see cref="FirewallRule.Position"/>).</summary>
    public List<FirewallRule> FirewallRules { get; set; } = [];

    public int MemoryMiB { get; set; } = QubeRules.DefaultMemoryMiB;
    public int VCpus { get; set; } = QubeRules.DefaultVCpus;
    public bool Autostart { get; set; }
    public string Notes { get; set; } = "";
    public DateTime CreatedUtc { get; set; }

    /// <summary>An installation medium (an ISO file on dom0's disk) attached as the qube's CD-ROM, or null.</summary>
    public string? InstallMedia { get; set; }

    /// <summary>Whether the qube boots from <see cref="InstallMedia"/> first; cleared at its first shutdown after.</summary>
    public bool BootFromMedia { get; set; }

    public List<QubeFeature> Features { get; set; } = [];
    public List<Volume> Volumes { get; set; } = [];

    /// <summary>True for the classes Qubes updates on their own (TemplateVM, StandaloneVM).</summary>
    public bool Updateable => Class is QubeClass.TemplateVM or QubeClass.StandaloneVM;

    public string? Feature(string key) => Features.FirstOrDefault(f => f.Key == key)?.Value;

    /// <summary>Whether a boolean feature is set, as Qubes reads one: absent, "", "0" and "False" are off.</summary>
    public bool FeatureIsOn(string key) => QubeFeatureRules.IsOn(Feature(key));

    /// <summary>An AppVM that disposables can be based on (Qubes' <c>template_for_dispvms</c>).</summary>
    public bool IsDisposableTemplate => Class == QubeClass.AppVM && FeatureIsOn(DisposableFeatures.TemplateForDispvms);

    /// <summary>A disposable removed with its files once it stops (Qubes' <c>auto_cleanup</c>); a named disposable is kept.</summary>
    public bool AutoCleanup => Class == QubeClass.DispVM && FeatureIsOn(DisposableFeatures.AutoCleanup);

    /// <summary>A disposable started ahead and paused, not handed out yet.</summary>
    public bool IsPreloaded => Class == QubeClass.DispVM && FeatureIsOn(DisposableFeatures.Preloaded);

    /// <summary>How many disposables a disposable template keeps preloaded (0 when the feature is unset or not a number).</summary>
    public int PreloadMax => IsDisposableTemplate && int.TryParse(Feature(DisposableFeatures.PreloadMax), out var n) ? Math.Clamp(n, 0, DisposableFeatures.MaxPreloaded) : 0;
}

/// <summary>The feature keys of Qubes' disposables, as core-admin names them.</summary>
public static class DisposableFeatures
{
    public const string TemplateForDispvms = "template_for_dispvms";
    public const string AutoCleanup = "auto_cleanup";

    /// <summary>dom0's feature naming the default disposable template (Qubes' global <c>default_dispvm</c>).</summary>
    public const string DefaultDispvm = "default_dispvm";

    /// <summary>A disposable template's feature: how many disposables to keep preloaded (started, paused, hidden) for instant launches.</summary>
    public const string PreloadMax = "preload-dispvm-max";

    /// <summary>The most disposables a template keeps preloaded: each is a running qube's memory.</summary>
    public const int MaxPreloaded = 16;

    /// <summary>A disposable's feature while it waits preloaded; a launch that hands it out removes it, so it is handed out once.</summary>
    public const string Preloaded = "preload-dispvm";

    /// <summary>Features of a disposable template that its disposables do not inherit.</summary>
    public static readonly IReadOnlySet<string> NotInherited = new HashSet<string>(StringComparer.Ordinal) { TemplateForDispvms, "internal", PreloadMax };
}

/// <summary>A key/value feature of a qube (e.g. <c>updates-available</c>, <c>internal</c>).</summary>
public class QubeFeature
{
    public int QubeId { get; set; }
    public required string Key { get; set; }
    public string Value { get; set; } = "";
}

public enum VolumeKind
{
    Root,
    Private,
    Volatile,
}

/// <summary>
/// A disk of a qube: a qcow2 file in the pool. Roots follow Qubes' two kinds (core-admin qubes/storage): a
/// TemplateVM's or StandaloneVM's root is <c>save_on_stop</c>, a series of committed <see cref="RootRevision"/>s
/// with a dirty overlay on the current one while the qube runs; an AppVM's root is <c>snap_on_start</c>, an overlay
/// on its template's current revision made at each start and dropped at each stop.
/// </summary>
public class Volume
{
    public int Id { get; set; }
    public int QubeId { get; set; }
    public VolumeKind Kind { get; set; }

    /// <summary>
    /// The file the domain's disk points at. For a root it is the runtime overlay (the dirty overlay or the start
    /// snapshot), which exists only while the qube runs; the committed data are in the revisions.
    /// </summary>
    public string? Path { get; set; }

    public long VirtualSizeBytes { get; set; }

    /// <summary>Bytes allocated on the host, as qemu-img last measured them (a root: its revisions and overlay).</summary>
    public long UsageBytes { get; set; }

    public DateTime? UsageMeasuredUtc { get; set; }

    /// <summary>A save_on_stop root's current committed revision; null for other volumes.</summary>
    public int? CurrentRevision { get; set; }

    /// <summary>How many old revisions are kept besides the current one (Qubes' <c>revisions_to_keep</c>, default 1).</summary>
    public int RevisionsToKeep { get; set; } = 1;

    /// <summary>
    /// The root volume whose revision the runtime overlay at <see cref="Path"/> was made from: this volume itself for a
    /// save_on_stop root (its dirty overlay), the template's root for a snap_on_start one; null when there is no overlay.
    /// </summary>
    public int? OverlaySourceVolumeId { get; set; }

    /// <summary>The revision the runtime overlay was made from; an AppVM is outdated when this is not its template's current one.</summary>
    public int? OverlayRevision { get; set; }

    public DateTime? OverlayCreatedUtc { get; set; }

    /// <summary>
    /// An instant copy's pin: the root volume whose revision <see cref="DetachSourceRevision"/> this root's bottom
    /// layer is written on, until a detach has copied that data in; null once the root is independent. Stored, so the
    /// source's retention, merges and removal honour it across restarts of the console.
    /// </summary>
    public int? DetachSourceVolumeId { get; set; }

    /// <summary>The source revision the bottom layer reads through (see <see cref="DetachSourceVolumeId"/>).</summary>
    public int? DetachSourceRevision { get; set; }

    /// <summary>The user paused the detach: it is not queued again at start-up until resumed.</summary>
    public bool DetachPaused { get; set; }

    public List<RootRevision> Revisions { get; set; } = [];

    public bool IsSaveOnStopRoot => Kind == VolumeKind.Root && CurrentRevision is not null;
}

public enum RevisionState
{
    /// <summary>Journaled before the dirty overlay is renamed into place; recovery finishes or drops it.</summary>
    Committing,
    Committed,
}

/// <summary>
/// One committed revision of a save_on_stop root: a qcow2 layer whose backing file is the revision it was made on.
/// Its data never change once committed; a revision that fell out of <see cref="Volume.RevisionsToKeep"/> is merged
/// away or deleted once nothing (a kept revision, a running qube's overlay) reads through it.
/// </summary>
public class RootRevision
{
    public int Id { get; set; }
    public int VolumeId { get; set; }
    public int Number { get; set; }
    public required string Path { get; set; }

    /// <summary>The revision this one's layer is written on; null for a flat base.</summary>
    public int? BackingNumber { get; set; }

    public DateTime CreatedUtc { get; set; }

    /// <summary>Why it exists, in words: installed, committed at shutdown, an update, a compaction.</summary>
    public string Reason { get; set; } = "";

    /// <summary>Host bytes of this layer alone.</summary>
    public long SizeBytes { get; set; }

    public RevisionState State { get; set; } = RevisionState.Committed;

    /// <summary>
    /// A compaction let go of it while a running qube still read it: it is no longer kept for a revert, and goes as
    /// soon as its last reader stops or restarts. Stored, so the promise holds across a restart of the console.
    /// </summary>
    public bool Released { get; set; }

    /// <summary>The job (a compaction) that let go of it, whose log gets the line saying when it went and what it freed.</summary>
    public long? ReleasedByJobId { get; set; }
}

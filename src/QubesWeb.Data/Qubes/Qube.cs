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
    public int MemoryMiB { get; set; } = QubeRules.DefaultMemoryMiB;
    public int VCpus { get; set; } = QubeRules.DefaultVCpus;
    public bool Autostart { get; set; }
    public string Notes { get; set; } = "";
    public DateTime CreatedUtc { get; set; }

    public List<QubeFeature> Features { get; set; } = [];
    public List<Volume> Volumes { get; set; } = [];

    /// <summary>True for the classes Qubes updates on their own (TemplateVM, StandaloneVM).</summary>
    public bool Updateable => Class is QubeClass.TemplateVM or QubeClass.StandaloneVM;

    public string? Feature(string key) => Features.FirstOrDefault(f => f.Key == key)?.Value;
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

/// <summary>A disk of a qube: a qcow2 file in the pool.</summary>
public class Volume
{
    public int Id { get; set; }
    public int QubeId { get; set; }
    public VolumeKind Kind { get; set; }

    /// <summary>The image file; null for an AppVM's root, which is a snapshot of its template's root made at start.</summary>
    public string? Path { get; set; }

    public long VirtualSizeBytes { get; set; }

    /// <summary>Bytes allocated on the host, as qemu-img last measured them.</summary>
    public long UsageBytes { get; set; }

    public DateTime? UsageMeasuredUtc { get; set; }
}

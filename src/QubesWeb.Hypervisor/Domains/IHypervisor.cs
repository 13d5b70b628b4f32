namespace QubesWeb.Hypervisor.Domains;

/// <summary>
/// What the console needs from a hypervisor: domains, their run state and their lifecycle events. Two
/// implementations exist: <see cref="LibvirtHypervisor"/>, and an in-memory double used only by UI component tests.
/// </summary>
public interface IHypervisor
{
    /// <summary>Whether the hypervisor is reachable now, and why not when it is not.</summary>
    HypervisorConnectionState Connection { get; }

    /// <summary>Raised (off the caller's thread) when the connection goes down or comes back.</summary>
    event Action<HypervisorConnectionState>? ConnectionChanged;

    /// <summary>Raised (off libvirt's event thread) for each lifecycle event of any domain.</summary>
    event Action<DomainChange>? DomainChanged;

    /// <summary>All domains with their run state, in one call where the driver allows it.</summary>
    IReadOnlyList<DomainStatus> ListDomains();

    DomainStatus? GetDomain(string name);

    /// <summary>The qube metadata of a domain, or null when it has none (it was not defined by a console).</summary>
    QubeMetadata? GetMetadata(string name);

    string GetXml(string name);

    void Define(DomainSpec spec);

    /// <summary>
    /// Defines the domain unless libvirt already has it as <paramref name="spec"/> says (the fields the console
    /// manages); returns whether it defined it. A define for nothing would still raise a lifecycle event.
    /// </summary>
    bool DefineIfChanged(DomainSpec spec);
    void Undefine(string name);
    void Start(string name);
    void Shutdown(string name);
    void Kill(string name);
    void Pause(string name);
    void Resume(string name);
}

/// <summary>A qube's run state, as Qube Manager shows it; it always comes from the hypervisor.</summary>
public enum RunState
{
    Halted,
    Running,
    Paused,

    /// <summary>Between states: starting, shutting down, or blocked.</summary>
    Transient,
    Crashed,
    Unknown,
}

public sealed record DomainStatus(string Name, Guid Uuid, RunState State);

public enum DomainChangeKind
{
    Defined,
    Undefined,
    Started,
    Stopped,
    Suspended,
    Resumed,
    Shutdown,
    Crashed,
    Other,
}

public sealed record DomainChange(string Name, Guid Uuid, DomainChangeKind Kind, DateTime TimeUtc);

public sealed record HypervisorConnectionState(string Uri, bool IsUp, string? Error, DateTime SinceUtc);

/// <summary>The Qubes facts a domain carries in its namespaced metadata element.</summary>
public sealed record QubeMetadata(string Class, string Label, string? Template);

/// <summary>A disk of a domain: a qcow2 image the console's own storage code made.</summary>
public sealed record DiskSpec(string Path, string Target, bool ReadOnly = false, string Format = "qcow2");

/// <summary>A read-only ISO file as the domain's CD-ROM; <paramref name="Boot"/>: it boots before the first disk.</summary>
public sealed record CdromSpec(string Path, bool Boot);

/// <summary>Everything the console puts into a domain's XML.</summary>
/// <param name="OemStrings">SMBIOS type 11 strings the guest can read (dmidecode -t 11), as "key=value".</param>
public sealed record DomainSpec(
    string Name,
    Guid Uuid,
    int MemoryMiB,
    int VCpus,
    QubeMetadata Metadata,
    IReadOnlyList<DiskSpec> Disks,
    string? Description = null,
    IReadOnlyList<string>? OemStrings = null,
    CdromSpec? Cdrom = null);

/// <summary>The hypervisor could not be reached; the operation was not attempted or not completed.</summary>
public sealed class HypervisorUnavailableException(string message, Exception? inner = null) : RefusalException(message, inner);

/// <summary>The hypervisor refused an operation; the message is the hypervisor's own text.</summary>
public sealed class HypervisorException(string message, Exception? inner = null) : RefusalException(message, inner);

/// <summary>A qube's console is held by another viewer; opening it with force takes it over (virsh console --force).</summary>
public sealed class ConsoleBusyException(string message, Exception? inner = null) : RefusalException(message, inner);

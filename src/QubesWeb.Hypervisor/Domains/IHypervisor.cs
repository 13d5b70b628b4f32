using QubesWeb.Hypervisor.Networks;

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

    /// <summary>
    /// Starts the domain; the networks its interfaces are on are started first (a private link is defined stopped, and
    /// is started by the first qube that needs it, provider or client).
    /// </summary>
    void Start(string name);
    void Shutdown(string name);
    void Kill(string name);
    void Pause(string name);
    void Resume(string name);

    /// <summary>The console's private links libvirt has (networks named <see cref="LinkSpec.NamePrefix"/>...), defined or running.</summary>
    IReadOnlyList<LinkStatus> ListLinks();

    /// <summary>Defines <paramref name="link"/> unless libvirt already has it so; whether it defined it. It is not started here.</summary>
    bool DefineLinkIfChanged(LinkSpec link);

    /// <summary>Stops (if running) and undefines the console's link <paramref name="name"/>; nothing when libvirt has no such network.</summary>
    void RemoveLink(string name);

    /// <summary>The domains with an interface on <paramref name="network"/>, in their definition or while they run.</summary>
    IReadOnlyList<string> DomainsOnNetwork(string network);

    /// <summary>
    /// Brings the interfaces of the running domain <paramref name="spec"/> names in line with the spec, live: each
    /// interface the spec no longer has is unplugged (detached by its MAC), each new one plugged in. The definition is
    /// the caller's (<see cref="DefineIfChanged"/>); this is the running guest's half.
    /// </summary>
    InterfaceMove MoveInterfacesLive(DomainSpec spec);

    /// <summary>
    /// Defines <paramref name="firewall"/>'s filter unless libvirt already has it so. libvirt applies new rules at once
    /// to every running interface that uses the filter; an interface can only start once its filter exists.
    /// </summary>
    FirewallApply DefineFirewallIfChanged(FirewallSpec firewall);

    /// <summary>The console's firewall filters libvirt has (named <see cref="FirewallSpec.NamePrefix"/>...); none where the driver has no filters.</summary>
    IReadOnlyList<string> ListFirewalls();

    /// <summary>Undefines the console's filter <paramref name="name"/>; false while an interface still uses it (nothing is changed then).</summary>
    bool RemoveFirewall(string name);
}

/// <summary>A private link as libvirt has it.</summary>
public sealed record LinkStatus(string Name, string? Bridge, bool Active, bool HasAddress);

/// <summary>What a live move of a running domain's interfaces did.</summary>
public enum InterfaceMove
{
    /// <summary>Its interfaces already were the spec's (or it does not run).</summary>
    Unchanged,

    /// <summary>Interfaces were unplugged and plugged in: the guest is on its new links now.</summary>
    Moved,

    /// <summary>The driver cannot plug interfaces into a running domain (libvirt's test driver): the new definition applies at its next start.</summary>
    NotSupported,
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
/// <param name="Interfaces">Its network interfaces, in the guest's order (eth0 first); none: no network device at all.</param>
public sealed record DomainSpec(
    string Name,
    Guid Uuid,
    int MemoryMiB,
    int VCpus,
    QubeMetadata Metadata,
    IReadOnlyList<DiskSpec> Disks,
    string? Description = null,
    IReadOnlyList<string>? OemStrings = null,
    CdromSpec? Cdrom = null,
    IReadOnlyList<InterfaceSpec>? Interfaces = null);

/// <summary>The hypervisor could not be reached; the operation was not attempted or not completed.</summary>
public sealed class HypervisorUnavailableException(string message, Exception? inner = null) : RefusalException(message, inner);

/// <summary>The hypervisor refused an operation; the message is the hypervisor's own text.</summary>
public sealed class HypervisorException(string message, Exception? inner = null) : RefusalException(message, inner);

/// <summary>A qube's console is held by another viewer; opening it with force takes it over (virsh console --force).</summary>
public sealed class ConsoleBusyException(string message, Exception? inner = null) : RefusalException(message, inner);

using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;

namespace QubesWeb.Services.Estate;

/// <summary>
/// A qube as the lists show it: inventory facts joined with libvirt's run state. A row is its qube: two rows of one
/// qube are equal whatever changed in it, so a grid that keys its rows by item keeps the row's elements (and the
/// checkbox a user is clicking) when new rows arrive, and only redraws what changed.
/// </summary>
public sealed record QubeRow(
    string Name,
    QubeClass Class,
    string Label,
    string LabelColor,
    RunState State,
    string? Template,
    string? NetVm,
    bool ProvidesNetwork,
    int MemoryMiB,
    int VCpus,
    long DiskUsageBytes,
    bool Internal,
    RootStaleness Staleness = RootStaleness.Current,
    bool DisposableTemplate = false,
    QubeFirewallShown Firewall = QubeFirewallShown.Open)
{
    public bool Equals(QubeRow? other) => other is not null && string.Equals(Name, other.Name, StringComparison.Ordinal);

    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Name);

    /// <summary>Whether <paramref name="other"/> shows exactly what this row shows (equality is by name only).</summary>
    public bool ReadsAs(QubeRow other) =>
        Equals(other) && Class == other.Class && Label == other.Label && LabelColor == other.LabelColor && State == other.State
        && Template == other.Template && NetVm == other.NetVm && ProvidesNetwork == other.ProvidesNetwork && MemoryMiB == other.MemoryMiB
        && VCpus == other.VCpus && DiskUsageBytes == other.DiskUsageBytes && Internal == other.Internal && Staleness == other.Staleness
        && DisposableTemplate == other.DisposableTemplate && Firewall == other.Firewall;

    /// <summary>Rows for <paramref name="qubes"/>, which must include their templates for the outdated states.</summary>
    public static List<QubeRow> From(IReadOnlyCollection<Qube> qubes, EstateMonitor estate)
    {
        var current = Outdated.CurrentRevisions(qubes);
        var privateWrites = Outdated.SourcePrivateWrites(qubes);
        return qubes.Select(q =>
        {
            var state = estate.StateOf(q);
            return new QubeRow(
                q.Name, q.Class, q.Label.Name, q.Label.Color, state, q.Template?.Name, q.NetVm?.Name, q.ProvidesNetwork,
                q.MemoryMiB, q.VCpus,
                // An AppVM's root is its template's: only what the qube owns is counted, as Qube Manager does.
                q.Volumes.Sum(v => v.UsageBytes),
                q.FeatureIsOn("internal"),
                Outdated.Of(q, state, current, estate.StateOf, privateWrites),
                q.IsDisposableTemplate,
                q.FirewallPolicy == Hypervisor.Networks.FirewallAction.Drop ? QubeFirewallShown.Limited
                : q.FirewallRules.Any(r => r.Action == Hypervisor.Networks.FirewallAction.Drop) ? QubeFirewallShown.Filtered
                : QubeFirewallShown.Open);
        }).ToList();
    }
}

/// <summary>A qube's firewall at a glance, as the lists and the map show it.</summary>
public enum QubeFirewallShown
{
    /// <summary>All outgoing traffic allowed (Qubes' default).</summary>
    Open,

    /// <summary>All allowed but what its drop rules name.</summary>
    Filtered,

    /// <summary>Only what its rules accept (the rest dropped).</summary>
    Limited,
}

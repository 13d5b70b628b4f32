using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;

namespace QubesWeb.Services.Estate;

/// <summary>A qube as the lists show it: inventory facts joined with libvirt's run state.</summary>
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
    bool Internal)
{
    public static List<QubeRow> From(IEnumerable<Qube> qubes, EstateMonitor estate) =>
        qubes.Select(q => new QubeRow(
            q.Name, q.Class, q.Label.Name, q.Label.Color, estate.StateOf(q), q.Template?.Name, q.NetVm?.Name, q.ProvidesNetwork,
            q.MemoryMiB, q.VCpus,
            // An AppVM's root is its template's: only what the qube owns is counted, as Qube Manager does.
            q.Volumes.Sum(v => v.UsageBytes),
            q.Feature("internal") is { } i && i is not ("" or "0" or "False" or "false"))).ToList();
}

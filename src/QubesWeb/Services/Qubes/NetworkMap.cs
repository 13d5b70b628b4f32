using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;

namespace QubesWeb.Services.Qubes;

/// <summary>A qube on the network map with the qubes whose netvm it is.</summary>
public sealed record NetworkNode(QubeRow Qube, IReadOnlyList<NetworkNode> Clients)
{
    /// <summary>
    /// The running (or paused) qubes that lose their network if this qube stops: its clients and theirs, all the way
    /// down, as Qubes warns before a netvm is shut down.
    /// </summary>
    public IReadOnlyList<QubeRow> CutIfStopped { get; } =
        Clients.SelectMany(c => (c.Runs ? [c.Qube] : Enumerable.Empty<QubeRow>()).Concat(c.CutIfStopped)).Distinct().ToList();

    /// <summary>Whether the qube runs (paused counts: its clients' traffic resumes with it).</summary>
    public bool Runs => Qube.State is RunState.Running or RunState.Paused;
}

/// <summary>
/// Who reaches the network through whom (Qubes' netvm chains): the uplink feeds the network providers that have no
/// netvm (sys-net), each provider feeds its clients, and the qubes with no netvm are offline. Built from the pages'
/// shared rows, so the map costs no read of its own.
/// </summary>
public sealed record NetworkMap(IReadOnlyList<NetworkNode> Uplinked, IReadOnlyList<QubeRow> Offline, IReadOnlyList<QubeRow> Unreachable)
{
    public static NetworkMap Build(IReadOnlyList<QubeRow> rows)
    {
        // dom0 is on no network; preloaded disposables are hidden everywhere until handed out.
        var shown = rows.Where(r => r.Class != QubeClass.AdminVM && !r.Internal).OrderBy(r => r.Name, StringComparer.Ordinal).ToList();
        var clientsOf = shown.Where(r => r.NetVm is not null).ToLookup(r => r.NetVm!, StringComparer.Ordinal);
        var placed = new HashSet<string>(StringComparer.Ordinal);

        NetworkNode Node(QubeRow qube)
        {
            placed.Add(qube.Name);
            // The inventory's rules refuse a netvm loop; a row already placed is never placed twice, whatever the data says.
            return new NetworkNode(qube, clientsOf[qube.Name].Where(c => !placed.Contains(c.Name)).ToList().Select(Node).ToList());
        }

        var uplinked = shown.Where(r => r.NetVm is null && r.ProvidesNetwork).ToList().Select(Node).ToList();
        var offline = shown.Where(r => r.NetVm is null && !r.ProvidesNetwork).ToList();
        foreach (var r in offline) placed.Add(r.Name);
        // A qube whose netvm is not on the map (no such qube, or a chain that does not reach the uplink).
        var unreachable = shown.Where(r => !placed.Contains(r.Name)).ToList();
        return new NetworkMap(uplinked, offline, unreachable);
    }

    /// <summary>Every qube on the map that is placed under the uplink.</summary>
    public int Connected => Uplinked.Sum(Count);

    private static int Count(NetworkNode n) => 1 + n.Clients.Sum(Count);
}

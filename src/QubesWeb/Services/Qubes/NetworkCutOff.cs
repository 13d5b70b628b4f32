using Microsoft.EntityFrameworkCore;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;

namespace QubesWeb.Services.Qubes;

/// <summary>
/// Who loses network when <paramref name="Qube"/> stops, as Qubes warns before a netvm is shut down: its running (or
/// paused, or starting) <paramref name="Clients"/>, and <paramref name="Behind"/> them the running qubes whose chain goes
/// through one of those clients. Only the clients decide whether a shutdown must be confirmed; the others are said so
/// the user knows the whole cost.
/// </summary>
public sealed record NetworkCutOff(string Qube, IReadOnlyList<string> Clients, IReadOnlyList<string> Behind)
{
    public bool Any => Clients.Count > 0;

    /// <summary>Reads it from the inventory's netvm names (one light query) and the run states the monitor holds.</summary>
    public static async Task<NetworkCutOff> ReadAsync(Inventory inventory, EstateMonitor estate, string qube, CancellationToken ct)
    {
        List<(string Name, string? NetVm)> rows;
        await using (var db = await inventory.Contexts.CreateDbContextAsync(ct))
            rows = (await db.Qubes.Select(q => new { q.Name, Net = q.NetVm == null ? null : q.NetVm.Name }).ToListAsync(ct))
                .Select(r => (r.Name, r.Net)).ToList();
        var running = rows.Where(r => estate.StateOf(r.Name) is RunState.Running or RunState.Paused or RunState.Transient)
            .ToLookup(r => r.NetVm, r => r.Name, StringComparer.Ordinal);
        var clients = running[qube].Order(StringComparer.Ordinal).ToList();
        var seen = new HashSet<string>(clients, StringComparer.Ordinal) { qube };
        var behind = new List<string>();
        // The inventory refuses netvm loops; the seen set keeps a loop in the data from walking forever anyway.
        for (var next = new Queue<string>(clients); next.TryDequeue(out var via);)
            foreach (var c in running[via])
                if (seen.Add(c)) { behind.Add(c); next.Enqueue(c); }
        behind.Sort(StringComparer.Ordinal);
        return new NetworkCutOff(qube, clients, behind);
    }
}

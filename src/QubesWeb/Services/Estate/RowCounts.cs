using System.Runtime.CompilerServices;
using QubesWeb.Hypervisor.Domains;

namespace QubesWeb.Services.Estate;

/// <summary>
/// Counts over one set of rows (by run state, outdated, per template), made once per set: every open dashboard holds
/// the same shared rows of a version (<c>QubeQueries.RowsAsync</c>), so at each libvirt event they are counted once,
/// not once per tab.
/// </summary>
public sealed class RowCounts
{
    private static readonly ConditionalWeakTable<IReadOnlyList<QubeRow>, RowCounts> Made = new();
    private readonly Dictionary<string, (int Running, int Outdated)> _byTemplate = new(StringComparer.Ordinal);

    private RowCounts(IReadOnlyList<QubeRow> rows)
    {
        var byState = new Dictionary<RunState, int>();
        foreach (var row in rows)
        {
            byState[row.State] = byState.GetValueOrDefault(row.State) + 1;
            if (row.Staleness == RootStaleness.Outdated) Outdated++;
            if (row.Staleness == RootStaleness.ToBeOutdated) ToBeOutdated++;
            if (row.Template is not { } template) continue;
            var (running, outdated) = _byTemplate.GetValueOrDefault(template);
            _byTemplate[template] = (running + (row.State == RunState.Running ? 1 : 0), outdated + (row.Staleness == RootStaleness.Outdated ? 1 : 0));
        }
        ByState = byState;
        StatesKey = string.Join(',', byState.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key}={kv.Value}"));
    }

    public static RowCounts Of(IReadOnlyList<QubeRow> rows) => Made.GetValue(rows, r => new RowCounts(r));

    public IReadOnlyDictionary<RunState, int> ByState { get; }

    /// <summary>The counts by state as one value, equal exactly when the counts are.</summary>
    public string StatesKey { get; }

    public int Outdated { get; }

    public int ToBeOutdated { get; }

    /// <summary>The qubes based on a template: how many run, how many of those are outdated.</summary>
    public (int Running, int Outdated) OfTemplate(string template) => _byTemplate.GetValueOrDefault(template);
}

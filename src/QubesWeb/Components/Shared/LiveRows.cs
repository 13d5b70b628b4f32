using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Rendering;
using QubesWeb.Services.Estate;

namespace QubesWeb.Components.Shared;

/// <summary>
/// A page's rows kept live cell by cell. When only run states change, the page hands the new rows here and only the
/// <see cref="LiveRow"/> cells of rows that now read differently render again; the page itself does not. A list of a
/// thousand qubes open in many tabs otherwise renders and diffs its whole grid in every tab at every libvirt event,
/// which is what made a tab lag seconds behind a stream of events. Used on the circuit's own thread only (the
/// page's refresh and the cells' lifecycle both run there), so it needs no lock.
/// </summary>
public sealed class LiveRows : LiveParts
{
    // Rows by name, made once per set of rows: every open list holds the same shared rows of a version (QubeQueries).
    private static readonly ConditionalWeakTable<IReadOnlyList<QubeRow>, Dictionary<string, QubeRow>> Indexes = new();
    private IReadOnlyList<QubeRow> _rows = [];
    private Dictionary<string, QubeRow> _latest = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<LiveRow>> _cells = new(StringComparer.Ordinal);

    /// <summary>The newest row of that qube: a grid re-rendering itself (say on scrolling) may hand a cell the row it was given earlier.</summary>
    public QubeRow Latest(QubeRow row) => _latest.GetValueOrDefault(row.Name, row);

    /// <summary>The rows the page renders with (after a full load); the cells render as part of the page.</summary>
    public void Set(IReadOnlyList<QubeRow> rows)
    {
        _rows = rows;
        _latest = Indexes.GetValue(rows, r => r.ToDictionary(x => x.Name, StringComparer.Ordinal));
    }

    /// <summary>Whether <paramref name="rows"/> are the same qubes in the same order as the page shows, so cells alone can take them.</summary>
    public bool SameQubes(IReadOnlyList<QubeRow> rows)
    {
        if (rows.Count != _rows.Count) return false;
        for (var i = 0; i < rows.Count; i++)
            if (!string.Equals(rows[i].Name, _rows[i].Name, StringComparison.Ordinal)) return false;
        return true;
    }

    /// <summary>Takes newer rows of the same qubes and renders the cells of those that read differently now.</summary>
    public void Update(IReadOnlyList<QubeRow> rows)
    {
        var before = _latest;
        Set(rows);
        // Only the rows that have cells rendered: a virtualized grid renders a screenful of a thousand.
        var renders = new List<Action>();
        foreach (var (name, cells) in _cells)
        {
            if (!_latest.TryGetValue(name, out var row) || (before.TryGetValue(name, out var old) && old.ReadsAs(row))) continue;
            renders.AddRange(cells.Select(c => (Action)c.Refresh));
        }
        Render(renders);
    }

    internal void Add(string name, LiveRow cell)
    {
        if (!_cells.TryGetValue(name, out var cells)) _cells[name] = cells = [];
        cells.Add(cell);
    }

    internal void Remove(string name, LiveRow cell)
    {
        if (!_cells.TryGetValue(name, out var cells)) return;
        cells.Remove(cell);
        if (cells.Count == 0) _cells.Remove(name);
    }
}

/// <summary>A part of a row that shows what changes with the run state (the state chip, the action buttons): its content is rendered with the newest row.</summary>
public sealed class LiveRow : ComponentBase, IDisposable
{
    private string? _registered;

    [Parameter, EditorRequired] public LiveRows In { get; set; } = null!;

    [Parameter, EditorRequired] public QubeRow Row { get; set; } = null!;

    [Parameter, EditorRequired] public RenderFragment<QubeRow> ChildContent { get; set; } = null!;

    protected override void OnParametersSet()
    {
        // A virtualized grid reuses its cells for other rows as it scrolls.
        if (_registered == Row.Name) return;
        if (_registered is not null) In.Remove(_registered, this);
        In.Add(Row.Name, this);
        _registered = Row.Name;
    }

    protected override void BuildRenderTree(RenderTreeBuilder builder) => builder.AddContent(0, ChildContent(In.Latest(Row)));

    internal void Refresh() => StateHasChanged();

    public void Dispose()
    {
        if (_registered is not null) In.Remove(_registered, this);
    }
}

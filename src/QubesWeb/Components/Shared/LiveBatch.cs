using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Rendering;

namespace QubesWeb.Components.Shared;

/// <summary>The live parts of one page (<see cref="LiveRows"/>, <see cref="LiveRegions"/>): they render again in one batch.</summary>
public abstract class LiveParts
{
    internal LiveBatch? Batch { get; set; }

    /// <summary>
    /// Renders the parts again, all in one render batch (one message to the browser) when the page has a
    /// <see cref="LiveBatch"/>: a part re-rendered on its own outside a batch is sent at once in a batch of its own,
    /// and a burst of events would send a tab one message per changed cell.
    /// </summary>
    protected void Render(IReadOnlyList<Action> renders)
    {
        if (renders.Count == 0) return;
        if (Batch is { } batch) batch.Run(renders);
        else foreach (var render in renders) render();
    }
}

/// <summary>
/// Placed once in a page that has live parts: renders nothing itself; while the renderer renders it, the parts it is
/// given re-render, so they join its batch (renders asked for during a batch are part of that batch).
/// </summary>
public sealed class LiveBatch : ComponentBase, IDisposable
{
    private IReadOnlyList<Action> _pending = [];

    [Parameter, EditorRequired] public LiveParts For { get; set; } = null!;

    protected override void OnParametersSet() => For.Batch = this;

    internal void Run(IReadOnlyList<Action> renders)
    {
        _pending = [.. _pending, .. renders];
        StateHasChanged();
    }

    protected override void BuildRenderTree(RenderTreeBuilder builder)
    {
        var pending = _pending;
        _pending = [];
        foreach (var render in pending) render();
    }

    public void Dispose()
    {
        if (ReferenceEquals(For.Batch, this)) For.Batch = null;
    }
}

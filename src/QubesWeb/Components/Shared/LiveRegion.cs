using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Rendering;

namespace QubesWeb.Components.Shared;

/// <summary>
/// The parts of a page that show run states, rendered again on their own when only states change, while the rest of
/// the page (charts, cards, menus) is not rendered and diffed again in every open tab at every libvirt event. Used on
/// the circuit's own thread only.
/// </summary>
public sealed class LiveRegions : LiveParts
{
    private readonly List<LiveRegion> _regions = [];

    /// <summary>Renders again the regions whose content changed (all, for those that do not say what they show).</summary>
    public void Refresh() => Render(_regions.Where(r => r.Changed).Select(r => (Action)r.Refresh).ToList());

    internal void Add(LiveRegion region) => _regions.Add(region);

    internal void Remove(LiveRegion region) => _regions.Remove(region);
}

/// <summary>Content of the page that reads run states: it renders with the page, and again alone on <see cref="LiveRegions.Refresh"/>.</summary>
public sealed class LiveRegion : ComponentBase, IDisposable
{
    private LiveRegions? _registered;
    private object? _shown;

    [Parameter, EditorRequired] public LiveRegions In { get; set; } = null!;

    [Parameter, EditorRequired] public RenderFragment ChildContent { get; set; } = null!;

    /// <summary>
    /// What the content shows, as a value (a tuple of counts, a state): a refresh that finds it equal to what was
    /// rendered last renders nothing, so each open tab sends no update for a part that did not change.
    /// </summary>
    [Parameter] public Func<object>? Shows { get; set; }

    protected override void OnParametersSet()
    {
        if (ReferenceEquals(_registered, In)) return;
        _registered?.Remove(this);
        In.Add(this);
        _registered = In;
    }

    protected override void BuildRenderTree(RenderTreeBuilder builder)
    {
        _shown = Shows?.Invoke();
        builder.AddContent(0, ChildContent);
    }

    internal bool Changed => Shows is null || !Equals(Shows(), _shown);

    internal void Refresh() => StateHasChanged();

    public void Dispose() => _registered?.Remove(this);
}

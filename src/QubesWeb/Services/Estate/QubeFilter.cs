namespace QubesWeb.Services.Estate;

/// <summary>
/// The qubes list's filters: quick search and class, state, label and template choices (empty = all). A state is a
/// run state or an outdated state (Outdated, ToBeOutdated), matched without regard to case.
/// </summary>
public sealed record QubeFilter(
    string? Search,
    IEnumerable<string> Classes,
    IEnumerable<string> States,
    IEnumerable<string> Labels,
    IEnumerable<string> Templates,
    bool ShowInternal)
{
    public static IEnumerable<QubeRow> Apply(IEnumerable<QubeRow> rows, QubeFilter f)
    {
        var classes = f.Classes.ToHashSet(StringComparer.OrdinalIgnoreCase);
        var states = f.States.ToHashSet(StringComparer.OrdinalIgnoreCase);
        var labels = f.Labels.ToHashSet(StringComparer.OrdinalIgnoreCase);
        var templates = f.Templates.ToHashSet(StringComparer.Ordinal);
        var search = f.Search?.Trim();
        return rows.Where(r =>
            (f.ShowInternal || !r.Internal)
            && (classes.Count == 0 || classes.Contains(r.Class.ToString()))
            && (states.Count == 0 || states.Contains(r.State.ToString())
                || (r.Staleness != RootStaleness.Current && states.Contains(r.Staleness.ToString())))
            && (labels.Count == 0 || labels.Contains(r.Label))
            && (templates.Count == 0 || (r.Template is not null && templates.Contains(r.Template)))
            && (string.IsNullOrEmpty(search) || Matches(r, search)));
    }

    private static bool Matches(QubeRow r, string s) =>
        r.Name.Contains(s, StringComparison.OrdinalIgnoreCase)
        || r.Class.ToString().Contains(s, StringComparison.OrdinalIgnoreCase)
        || r.Label.Contains(s, StringComparison.OrdinalIgnoreCase)
        || (r.Template?.Contains(s, StringComparison.OrdinalIgnoreCase) ?? false)
        || (r.NetVm?.Contains(s, StringComparison.OrdinalIgnoreCase) ?? false);
}

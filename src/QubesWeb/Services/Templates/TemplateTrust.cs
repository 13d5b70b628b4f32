using QubesWeb.Data.Qubes;

namespace QubesWeb.Services.Templates;

/// <summary>An AppVM based on the template, with the DispVMs based on that AppVM (they use the template's root through it).</summary>
public sealed record TemplateDependent(Qube AppVm, IReadOnlyList<Qube> DispVms);

public enum TemplateWarningKind
{
    /// <summary>The template serves qubes of very different trust (see <see cref="TemplateTrust.SpreadWarningSteps"/>).</summary>
    TrustSpread,

    /// <summary>The template has a netvm; templates should have none.</summary>
    HasNetVm,
}

public sealed record TemplateWarning(TemplateWarningKind Kind, string Text);

/// <summary>What depends on one template and how far it must be trusted.</summary>
/// <param name="Template">The TemplateVM assessed.</param>
/// <param name="AppVms">Its AppVMs, by name, each with its DispVMs: the dependency tree.</param>
/// <param name="Dependents">Every qube that depends on it (AppVMs and DispVMs), by name.</param>
/// <param name="Labels">The labels of those qubes, least to most trusted (custom labels last).</param>
/// <param name="EffectiveTrust">
/// The label of its most trusted dependent: a template is as trusted as the most trusted qube based on it. Null when
/// nothing depends on it (or only qubes with custom labels, whose trust the console cannot rank).
/// </param>
/// <param name="Warnings">Trust spread and netvm warnings, as sentences to show.</param>
public sealed record TemplateTrustReport(
    Qube Template,
    IReadOnlyList<TemplateDependent> AppVms,
    IReadOnlyList<Qube> Dependents,
    IReadOnlyList<Label> Labels,
    Label? EffectiveTrust,
    IReadOnlyList<TemplateWarning> Warnings);

/// <summary>
/// The trust a template carries (the seed; qubes-doc templates.rst): a compromised template compromises every qube
/// based on it, so it is as trusted as the most trusted of them, and one template should not serve qubes of very
/// different trust. Pure logic over inventory objects: no UI, no database.
/// </summary>
public static class TemplateTrust
{
    /// <summary>
    /// The rule for "very different trust": Qubes' eight labels rank trust from red (1) to black (8), seven steps.
    /// A template whose least and most trusted dependents are this many steps apart or more (more than half the
    /// scale: red with gray or above, orange with blue or above, green with black) gets a warning.
    /// </summary>
    public const int SpreadWarningSteps = 4;

    /// <summary>Qubes' own labels are ranked by index; custom labels (index above 8) carry no known trust.</summary>
    public static bool IsRanked(Label label) => label.Id is >= 1 and <= 8;

    /// <summary>Assesses <paramref name="template"/> against the qubes of the inventory (which may include it).</summary>
    public static TemplateTrustReport Assess(Qube template, IEnumerable<Qube> qubes)
    {
        var all = qubes as IReadOnlyCollection<Qube> ?? qubes.ToList();
        var byId = all.Where(q => q.Id != 0).GroupBy(q => q.Id).ToDictionary(g => g.Key, g => g.First());

        // Inventory lists are untracked: a qube's Template is its own copy, so match by name (unique), and by id
        // where only the key was loaded.
        string? TemplateOf(Qube q) =>
            q.Template?.Name ?? (q.TemplateId is { } id && byId.TryGetValue(id, out var t) ? t.Name : null);

        var appVms = all.Where(q => q.Class == QubeClass.AppVM && TemplateOf(q) == template.Name)
            .OrderBy(q => q.Name, StringComparer.Ordinal).ToList();
        var tree = appVms.Select(a => new TemplateDependent(a,
                all.Where(d => d.Class == QubeClass.DispVM && TemplateOf(d) == a.Name).OrderBy(d => d.Name, StringComparer.Ordinal).ToList()))
            .ToList();
        var dependents = tree.SelectMany(t => t.DispVms.Prepend(t.AppVm)).OrderBy(q => q.Name, StringComparer.Ordinal).ToList();

        var labels = dependents.Select(q => q.Label).DistinctBy(l => l.Id)
            .OrderBy(l => IsRanked(l) ? 0 : 1).ThenBy(l => l.Id).ToList();
        var ranked = labels.Where(IsRanked).ToList();
        var effective = ranked.Count > 0 ? ranked[^1] : null;

        var warnings = new List<TemplateWarning>();
        if (ranked.Count > 1 && ranked[^1].Id - ranked[0].Id >= SpreadWarningSteps)
        {
            var low = ranked[0];
            var high = ranked[^1];
            warnings.Add(new TemplateWarning(TemplateWarningKind.TrustSpread,
                $"{template.Name} serves qubes of very different trust: {low.Name} ({NamesWith(dependents, low)}) and " +
                $"{high.Name} ({NamesWith(dependents, high)}), {high.Id - low.Id} steps apart on the red-to-black scale " +
                $"(the console warns at {SpreadWarningSteps} or more). A template is as trusted as the most trusted qube " +
                $"based on it: software installed into it for the {low.Name} qubes runs in the {high.Name} ones too. " +
                "Give the less trusted qubes a template of their own."));
        }
        if (template.NetVm is { } netvm)
        {
            warnings.Add(new TemplateWarning(TemplateWarningKind.HasNetVm,
                $"{template.Name} has a netvm ({netvm.Name}). Templates should have none: they reach package " +
                "repositories only through the updates proxy, so nothing else inside them talks to the network. " +
                "Set its netvm to none."));
        }

        return new TemplateTrustReport(template, tree, dependents, labels, effective, warnings);
    }

    /// <summary>Assesses every TemplateVM among <paramref name="qubes"/>, by name.</summary>
    public static List<TemplateTrustReport> AssessAll(IEnumerable<Qube> qubes)
    {
        var all = qubes as IReadOnlyCollection<Qube> ?? qubes.ToList();
        return all.Where(q => q.Class == QubeClass.TemplateVM).OrderBy(q => q.Name, StringComparer.Ordinal)
            .Select(t => Assess(t, all)).ToList();
    }

    private static string NamesWith(IEnumerable<Qube> dependents, Label label) =>
        string.Join(", ", dependents.Where(q => q.Label.Id == label.Id).Select(q => q.Name));
}

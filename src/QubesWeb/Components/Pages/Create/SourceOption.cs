using QubesWeb.Data.Qubes;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Templates;

namespace QubesWeb.Components.Pages.Create;

/// <summary>
/// A template the wizard offers as a source: its effective trust, and the plan of copying it or why it cannot be
/// copied. <paramref name="Key"/> names the root revision the plan was measured on.
/// </summary>
public sealed record SourceOption(Qube Template, Label? Trust, ClonePlan? Plan, string? Problem, string Key)
{
    public SourceDefaults? Defaults => Plan is null ? null
        : new SourceDefaults(Template.Name, Template.MemoryMiB, Template.VCpus, Plan.SourceVirtualSizeBytes);
}

/// <summary>
/// The wizard's sources for one visit: every template with its plan, which is measured again (qemu-img) only for a
/// template whose current root revision changed since the last look.
/// </summary>
public sealed class SourceOptions(QubeCommands commands)
{
    private readonly Dictionary<string, SourceOption> _planned = new(StringComparer.Ordinal);

    /// <summary>The templates among <paramref name="qubes"/>, by name, each as an option.</summary>
    public async Task<List<SourceOption>> ListAsync(IReadOnlyList<Qube> qubes)
    {
        var templates = qubes.Where(q => q.Class == QubeClass.TemplateVM).OrderBy(q => q.Name, StringComparer.Ordinal).ToList();
        var options = (await Task.WhenAll(templates.Select(t => OptionAsync(t, qubes)))).ToList();
        foreach (var gone in _planned.Keys.Except(options.Select(o => o.Template.Name)).ToList()) _planned.Remove(gone);
        return options;
    }

    private async Task<SourceOption> OptionAsync(Qube template, IReadOnlyList<Qube> qubes)
    {
        var trust = TemplateTrust.Assess(template, qubes).EffectiveTrust;
        var root = template.Volumes.FirstOrDefault(v => v.IsSaveOnStopRoot);
        var key = root is null ? "none" : $"{root.CurrentRevision}:{root.Revisions.FirstOrDefault(r => r.Number == root.CurrentRevision)?.Path}";
        if (_planned.TryGetValue(template.Name, out var known) && known.Key == key)
            return _planned[template.Name] = known with { Template = template, Trust = trust };
        ClonePlan? plan = null;
        string? problem = null;
        try
        {
            plan = await commands.PlanCloneAsync(new CloneRequest(QubeClass.StandaloneVM, template.Name, template.Label.Name));
        }
        catch (RefusalException e)
        {
            problem = e.Message;
        }
        return _planned[template.Name] = new SourceOption(template, trust, plan, problem, key);
    }
}

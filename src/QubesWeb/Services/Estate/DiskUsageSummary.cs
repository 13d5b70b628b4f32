using QubesWeb.Data.Qubes;

namespace QubesWeb.Services.Estate;

/// <summary>
/// Where the pool's space goes, by class and by template, and what sharing templates saves: each AppVM reads its
/// template's root instead of carrying a full copy, as a standalone does.
/// </summary>
public sealed record DiskUsageSummary(
    IReadOnlyList<(string Name, long Bytes)> ByClass,
    IReadOnlyList<(string Name, long Bytes)> ByTemplate,
    long TotalBytes,
    long SavedBySharingBytes,
    int SharingQubes)
{
    public static DiskUsageSummary From(IReadOnlyCollection<Qube> qubes)
    {
        static long Own(Qube q) => q.Volumes.Sum(v => v.UsageBytes);
        var byName = qubes.ToDictionary(q => q.Name);
        Qube? TemplateOf(Qube q) => q.Template is null ? null : byName.GetValueOrDefault(q.Template.Name);
        // A DispVM's root comes from its AppVM's template.
        Qube? RootSource(Qube q) => q.Class switch
        {
            QubeClass.AppVM => TemplateOf(q),
            QubeClass.DispVM => TemplateOf(q) is { } app ? TemplateOf(app) : null,
            _ => null,
        };

        var byClass = qubes.GroupBy(q => q.Class)
            .Select(g => (g.Key.ToString(), g.Sum(Own)))
            .Where(x => x.Item2 > 0)
            .OrderByDescending(x => x.Item2).ToList();

        var byTemplate = qubes.Where(q => q.Class == QubeClass.TemplateVM)
            .Select(t => (t.Name, Own(t) + qubes.Where(q => RootSource(q)?.Name == t.Name).Sum(Own)))
            .OrderByDescending(x => x.Item2).ToList();
        var standalone = qubes.Where(q => q.Class == QubeClass.StandaloneVM).Sum(Own);
        if (standalone > 0) byTemplate.Add(("standalones", standalone));

        var sharing = qubes.Where(q => RootSource(q) is not null).ToList();
        var saved = sharing.Sum(q => RootSource(q)!.Volumes.Where(v => v.Kind == VolumeKind.Root).Sum(v => v.UsageBytes));
        return new DiskUsageSummary(byClass, byTemplate, qubes.Sum(Own), saved, sharing.Count);
    }
}

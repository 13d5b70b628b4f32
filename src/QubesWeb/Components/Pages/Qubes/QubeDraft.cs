using QubesWeb.Data.Qubes;

namespace QubesWeb.Components.Pages.Qubes;

/// <summary>One feature as the qube page's form holds it.</summary>
public sealed class FeatureRow
{
    public required string Key { get; init; }
    public string Value { get; set; } = "";
}

/// <summary>The editable properties of a qube, as the qube page's form holds them.</summary>
public sealed class QubeDraft
{
    /// <summary>No netvm, or no template: "none" is a reserved qube name, so it can never collide with a real one.</summary>
    public const string None = "none";

    public string Label { get; set; } = "";
    public int MemoryMiB { get; set; }
    public int VCpus { get; set; }
    public string NetVm { get; set; } = None;
    public string Template { get; set; } = None;
    public string Notes { get; set; } = "";
    public List<FeatureRow> Features { get; set; } = [];

    public static QubeDraft From(Qube q) => new()
    {
        Label = q.Label.Name,
        MemoryMiB = q.MemoryMiB,
        VCpus = q.VCpus,
        NetVm = q.NetVm?.Name ?? None,
        Template = q.Template?.Name ?? None,
        Notes = q.Notes,
        Features = q.Features.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => new FeatureRow { Key = f.Key, Value = f.Value }).ToList(),
    };

    public QubeDraft Copy() => new()
    {
        Label = Label, MemoryMiB = MemoryMiB, VCpus = VCpus, NetVm = NetVm, Template = Template, Notes = Notes,
        Features = Features.Select(f => new FeatureRow { Key = f.Key, Value = f.Value }).ToList(),
    };

    public bool SameAs(QubeDraft o) =>
        Label == o.Label && MemoryMiB == o.MemoryMiB && VCpus == o.VCpus && NetVm == o.NetVm && Template == o.Template
        && (Notes ?? "") == (o.Notes ?? "") && FeatureChangesFrom(o) is null;

    /// <summary>Only what differs from <paramref name="o"/>: keys set to a new value, removed keys to null; null when none.</summary>
    public IReadOnlyDictionary<string, string?>? FeatureChangesFrom(QubeDraft o)
    {
        var changes = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var f in Features)
            if (o.Features.FirstOrDefault(x => x.Key == f.Key) is not { } was || was.Value != (f.Value ?? ""))
                changes[f.Key] = f.Value ?? "";
        foreach (var f in o.Features)
            if (Features.All(x => x.Key != f.Key))
                changes[f.Key] = null;
        return changes.Count == 0 ? null : changes;
    }
}

using QubesWeb.Data.Qubes;
using QubesWeb.Services.Storage;

namespace QubesWeb.Services.Templates;

/// <summary>
/// What the pages read about templates' (and standalones') roots and their qubes: revisions, reclaimable space, and
/// what a restart of the outdated qubes would do. Reads only; changes go through <see cref="TemplateCommands"/>.
/// </summary>
public sealed class TemplateQueries(RootRevisions revisions, RootMeasures measures, RestartOutdatedJob restarts)
{
    /// <summary>A root's revisions, who reads each, and which wait for their last reader; null for a qube without one.</summary>
    public Task<RootHistory?> HistoryAsync(string qube, CancellationToken ct = default) => revisions.HistoryAsync(qube, ct);

    /// <summary>Per root, what its chain takes on disk and what it would take compacted, as last measured.</summary>
    public IReadOnlyDictionary<string, (long Allocated, long Compacted)> Reclaimable => measures.Reclaimable;

    /// <summary>The outdated qubes a restart would restart, in order, and those left alone.</summary>
    public Task<(IReadOnlyList<Qube> Order, IReadOnlyList<string> LeftAlone)> PlanRestartAsync(string target, CancellationToken ct = default) =>
        restarts.PlanAsync(target, ct);

    /// <summary>The templates behind <paramref name="target"/>'s outdated qubes that still run (their changes are not committed yet).</summary>
    public Task<IReadOnlyList<string>> RunningTemplatesAsync(string target, CancellationToken ct = default) =>
        restarts.RunningTemplatesAsync(target, ct);
}

using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;

namespace QubesWeb.Services.Estate;

/// <summary>Qube Manager's two states for a running qube on a template (qubes-manager qube_manager.py).</summary>
public enum RootStaleness
{
    Current,

    /// <summary>Its template runs: once the template stops and commits, this qube will be outdated.</summary>
    ToBeOutdated,

    /// <summary>Its root snapshot was made from a revision that is no longer its template's current one: restart it.</summary>
    Outdated,
}

public static class Outdated
{
    /// <summary>The current revision of every save_on_stop root among <paramref name="qubes"/>, by volume id.</summary>
    public static Dictionary<int, int> CurrentRevisions(IEnumerable<Qube> qubes) =>
        qubes.SelectMany(q => q.Volumes).Where(v => v.CurrentRevision is not null).ToDictionary(v => v.Id, v => v.CurrentRevision!.Value);

    /// <summary>
    /// When each private volume that disposables were copied from was last written (its file's time), by volume id:
    /// a disposable template's private changes only while it runs.
    /// </summary>
    public static Dictionary<int, DateTime> SourcePrivateWrites(IEnumerable<Qube> qubes)
    {
        var all = qubes.ToList();
        var sources = all.Where(q => q.Class == QubeClass.DispVM).SelectMany(q => q.Volumes)
            .Where(v => v.Kind == VolumeKind.Private && v.OverlaySourceVolumeId is not null).Select(v => v.OverlaySourceVolumeId!.Value).ToHashSet();
        return sources.Count == 0 ? [] : all.SelectMany(q => q.Volumes)
            .Where(v => sources.Contains(v.Id) && v.Path is not null && File.Exists(v.Path))
            .ToDictionary(v => v.Id, v => File.GetLastWriteTimeUtc(v.Path!));
    }

    /// <summary>
    /// A halted qube is never outdated (it has no snapshot); a running one is outdated when its snapshot's revision
    /// is not its template's current one, and to be outdated while its template runs. A running disposable is
    /// outdated too when its disposable template's private volume was written after it was copied.
    /// </summary>
    public static RootStaleness Of(Qube qube, RunState state, IReadOnlyDictionary<int, int> currentRevisions, Func<string, RunState> stateOf,
        IReadOnlyDictionary<int, DateTime>? privateWrites = null)
    {
        if (state is not (RunState.Running or RunState.Paused or RunState.Transient)) return RootStaleness.Current;
        var root = qube.Volumes.FirstOrDefault(v => v.Kind == VolumeKind.Root);
        if (root?.OverlaySourceVolumeId is { } source && source != root.Id && root.OverlayRevision is { } made
            && currentRevisions.TryGetValue(source, out var current) && current != made)
            return RootStaleness.Outdated;
        if (qube.Class == QubeClass.DispVM && privateWrites is not null
            && qube.Volumes.FirstOrDefault(v => v.Kind == VolumeKind.Private) is { OverlaySourceVolumeId: { } from, OverlayCreatedUtc: { } copied }
            && privateWrites.TryGetValue(from, out var written) && written > DateTime.SpecifyKind(copied, DateTimeKind.Utc))
            return RootStaleness.Outdated;
        if (qube.Template is { } t && stateOf(t.Name) is RunState.Running or RunState.Paused or RunState.Transient)
            return RootStaleness.ToBeOutdated;
        return RootStaleness.Current;
    }

    /// <summary>Whether a restart of <paramref name="qube"/> after an update is wanted (Qubes' restart-after-update feature, default true).</summary>
    public static bool RestartsAfterUpdate(Qube qube) =>
        qube.Feature("restart-after-update") is not { } v || v is not ("" or "0" or "False" or "false");
}

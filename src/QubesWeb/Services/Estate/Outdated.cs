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
    /// A halted qube is never outdated (it has no snapshot); a running one is outdated when its snapshot's revision
    /// is not its template's current one, and to be outdated while its template runs.
    /// </summary>
    public static RootStaleness Of(Qube qube, RunState state, IReadOnlyDictionary<int, int> currentRevisions, Func<string, RunState> stateOf)
    {
        if (state is not (RunState.Running or RunState.Paused or RunState.Transient)) return RootStaleness.Current;
        var root = qube.Volumes.FirstOrDefault(v => v.Kind == VolumeKind.Root);
        if (root?.OverlaySourceVolumeId is { } source && source != root.Id && root.OverlayRevision is { } made
            && currentRevisions.TryGetValue(source, out var current) && current != made)
            return RootStaleness.Outdated;
        if (qube.Template is { } t && stateOf(t.Name) is RunState.Running or RunState.Paused or RunState.Transient)
            return RootStaleness.ToBeOutdated;
        return RootStaleness.Current;
    }

    /// <summary>Whether a restart of <paramref name="qube"/> after an update is wanted (Qubes' restart-after-update feature, default true).</summary>
    public static bool RestartsAfterUpdate(Qube qube) =>
        qube.Feature("restart-after-update") is not { } v || v is not ("" or "0" or "False" or "false");
}

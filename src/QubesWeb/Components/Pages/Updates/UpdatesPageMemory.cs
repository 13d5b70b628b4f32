using QubesWeb.Data.Jobs;

namespace QubesWeb.Components.Pages.Updates;

/// <summary>
/// What the updates page keeps for its browser tab (scoped to the circuit) when the user goes to another page and
/// comes back, as Qubes' updater window keeps its state while open: the qubes ticked, and the updates and checks
/// started from it, so their progress, their outcome and the offer to restart outdated qubes are still there.
/// </summary>
public sealed class UpdatesPageMemory
{
    /// <summary>The jobs started from the page, by id, as last read.</summary>
    public Dictionary<long, Job> Launched { get; } = [];

    /// <summary>Finished jobs started here whose effect on the selection was applied.</summary>
    public HashSet<long> Settled { get; } = [];

    public HashSet<string> Selected { get; } = new(StringComparer.Ordinal);

    /// <summary>Whether the qubes with updates waiting were ticked already (only at the first visit).</summary>
    public bool Preselected { get; set; }
}

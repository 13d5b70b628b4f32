using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Jobs;

namespace QubesWeb.Components.Shared;

/// <summary>
/// Which lifecycle actions a qube in a run state offers, in the order their buttons show. The one copy of the rule
/// for the qubes list and the qube page (<see cref="QubeActions"/>); a services-side rule is to take its place.
/// </summary>
public static class QubeActionRules
{
    private static readonly LifecycleAction[] Halted = [LifecycleAction.Start];
    private static readonly LifecycleAction[] Running =
        [LifecycleAction.Shutdown, LifecycleAction.Restart, LifecycleAction.Pause, LifecycleAction.Kill];
    private static readonly LifecycleAction[] Paused = [LifecycleAction.Resume, LifecycleAction.Kill];
    private static readonly LifecycleAction[] KillOnly = [LifecycleAction.Kill];

    /// <summary>
    /// Halted: start. Running or between states: shut down, restart, pause, kill. Paused: resume, kill. Any other
    /// known state (crashed): kill. Unknown: nothing.
    /// </summary>
    public static IReadOnlyList<LifecycleAction> AllowedIn(RunState state) => state switch
    {
        RunState.Halted => Halted,
        RunState.Running or RunState.Transient => Running,
        RunState.Paused => Paused,
        RunState.Unknown => [],
        _ => KillOnly,
    };
}

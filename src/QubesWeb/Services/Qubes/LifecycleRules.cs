using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Jobs;

namespace QubesWeb.Services.Qubes;

public enum LifecycleAction
{
    Start,
    Shutdown,
    Kill,
    Pause,
    Resume,
    Restart,
}

/// <summary>
/// Which lifecycle action a run state allows, said once: the pages offer exactly the allowed actions, the engine
/// refuses the others with this text, and the restart of outdated qubes asks the same question.
/// </summary>
public static class LifecycleRules
{
    /// <summary>Why <paramref name="action"/> cannot be done to <paramref name="name"/> in <paramref name="state"/>, or null when it can.</summary>
    public static string? Refusal(string name, LifecycleAction action, RunState state) => (action, state) switch
    {
        (_, RunState.Unknown) => $"libvirt does not say what state '{name}' is in right now; wait until it does.",
        (LifecycleAction.Start, RunState.Halted) => null,
        (LifecycleAction.Start, RunState.Running or RunState.Transient) => $"'{name}' is already running.",
        (LifecycleAction.Start, RunState.Paused) => $"'{name}' is paused; resume it instead.",
        (LifecycleAction.Start, _) => $"'{name}' has crashed; kill it before you start it again.",
        (LifecycleAction.Shutdown or LifecycleAction.Restart or LifecycleAction.Kill, RunState.Halted) => $"'{name}' is not running.",
        (LifecycleAction.Shutdown or LifecycleAction.Restart, RunState.Paused) => $"'{name}' is paused; resume it first, or kill it.",
        (LifecycleAction.Shutdown or LifecycleAction.Restart, RunState.Crashed) => $"'{name}' has crashed; kill it instead.",
        (LifecycleAction.Shutdown or LifecycleAction.Restart or LifecycleAction.Kill, _) => null,
        (LifecycleAction.Pause, RunState.Running) => null,
        (LifecycleAction.Pause, _) => $"'{name}' can be paused only while it runs; it is {state.ToString().ToLowerInvariant()}.",
        (LifecycleAction.Resume, RunState.Paused) => null,
        (LifecycleAction.Resume, _) => $"'{name}' is not paused.",
        _ => $"'{action}' is not a lifecycle action.",
    };

    public static bool Allows(LifecycleAction action, RunState state) => Refusal("", action, state) is null;

    /// <summary>The actions a qube in <paramref name="state"/> offers, in the order the pages show them.</summary>
    public static IEnumerable<LifecycleAction> Offered(RunState state) =>
        Enum.GetValues<LifecycleAction>().Where(a => Allows(a, state)).OrderBy(Order);

    /// <summary>
    /// Why a shutdown of a netvm cannot go ahead: it has running clients the user did not agree to cut off (Qubes asks
    /// "sys-firewall is the netvm of running qubes work, personal: shut it down anyway?"). Null when it has none, or
    /// when every one of them is in <paramref name="confirmed"/>; a client that started after the user was asked is not.
    /// </summary>
    public static string? CutOffRefusal(NetworkCutOff cutOff, IReadOnlyCollection<string> confirmed)
    {
        var unconfirmed = cutOff.Clients.Where(c => !confirmed.Contains(c)).ToList();
        return unconfirmed.Count == 0 ? null
            : $"'{cutOff.Qube}' is the netvm of running qubes: {string.Join(", ", unconfirmed)}. Shut them down first, or confirm that they lose their network.";
    }

    /// <summary>Whether the action loses the qube's unsaved work, so the user confirms it first.</summary>
    public static bool NeedsConfirmation(LifecycleAction action) => action == LifecycleAction.Kill;

    /// <summary>The job kind that carries out <paramref name="action"/>.</summary>
    public static JobKind KindOf(LifecycleAction action) => action switch
    {
        LifecycleAction.Start => JobKind.Start,
        LifecycleAction.Shutdown => JobKind.Shutdown,
        LifecycleAction.Kill => JobKind.Kill,
        LifecycleAction.Pause => JobKind.Pause,
        LifecycleAction.Resume => JobKind.Resume,
        LifecycleAction.Restart => JobKind.Restart,
        _ => throw new ArgumentOutOfRangeException(nameof(action)),
    };

    /// <summary>The action as a button says it.</summary>
    public static string Verb(LifecycleAction action) => action == LifecycleAction.Shutdown ? "Shut down" : action.ToString();

    private static int Order(LifecycleAction a) => a switch
    {
        LifecycleAction.Start => 0,
        LifecycleAction.Shutdown => 1,
        LifecycleAction.Restart => 2,
        LifecycleAction.Pause => 3,
        LifecycleAction.Resume => 4,
        _ => 5,
    };
}

using Microsoft.AspNetCore.Components;
using MudBlazor;
using QubesWeb.Data.Jobs;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Qubes;

namespace QubesWeb.Components.Shared;

public partial class QubeActions
{
    [Inject] private QubeCommands Commands { get; set; } = null!;
    [Inject] private CircuitJobs MyJobs { get; set; } = null!;
    [Inject] private ISnackbar Snackbar { get; set; } = null!;
    [Inject] private IDialogService Dialogs { get; set; } = null!;

    /// <summary>The one qube the buttons act on.</summary>
    [Parameter] public string Name { get; set; } = "";

    /// <summary>Its run state: which buttons show.</summary>
    [Parameter] public RunState State { get; set; }

    /// <summary>Several qubes instead of one (the bulk bar): every action shows, each a job per qube.</summary>
    [Parameter] public IReadOnlyList<string>? Names { get; set; }

    /// <summary>Icon buttons, for a table row; otherwise buttons with their verb.</summary>
    [Parameter] public bool Dense { get; set; }

    [Parameter] public bool Disabled { get; set; }

    /// <summary>A bulk action was asked for and its jobs queued or refused (not after a kill or a cut-off that was not confirmed).</summary>
    [Parameter] public EventCallback Done { get; set; }

    private static string Verb(LifecycleAction a) => LifecycleRules.Verb(a);

    private static string Key(LifecycleAction a) => a.ToString().ToLowerInvariant();

    private static string IconOf(LifecycleAction a) => a switch
    {
        LifecycleAction.Start => Icons.Material.Filled.PlayArrow,
        LifecycleAction.Shutdown => Icons.Material.Filled.Stop,
        LifecycleAction.Restart => Icons.Material.Filled.RestartAlt,
        LifecycleAction.Pause => Icons.Material.Filled.Pause,
        LifecycleAction.Resume => Icons.Material.Filled.PlayCircleOutline,
        LifecycleAction.Kill => Icons.Material.Filled.PowerOff,
        _ => Icons.Material.Filled.QuestionMark,
    };

    private static Color ColorOf(LifecycleAction a) => a switch
    {
        LifecycleAction.Start => Color.Success,
        LifecycleAction.Kill => Color.Error,
        _ => Color.Default,
    };

    private async Task ActAsync(LifecycleAction action)
    {
        var name = Name;
        // Who would lose network: asked before a shutdown (the job refuses one the user did not agree to), said before a kill.
        var cutOff = action is LifecycleAction.Shutdown or LifecycleAction.Kill ? await Commands.CutOffIfStoppedAsync(name) : null;
        if (LifecycleRules.NeedsConfirmation(action) && !await ConfirmKillAsync($"Kill {name}?",
                $"Killing stops {name} at once, like pulling the plug: unsaved work in it is lost."
                + (cutOff is { Any: true } ? $" Running qubes lose their network through it: {string.Join(", ", cutOff.Clients.Concat(cutOff.Behind))}; they keep running, without network until it runs again." : "")))
            return;
        if (action == LifecycleAction.Shutdown && cutOff is { Any: true } && !await ConfirmCutOffAsync([cutOff]))
            return;
        var (job, refusal) = await QueueAsync(action, name, action == LifecycleAction.Shutdown ? cutOff?.Clients : null);
        if (job is not null) Snackbar.Add($"{Verb(action)} {name}: task #{job.Id} queued.", Severity.Info);
        else Snackbar.Add(refusal!, Severity.Error);
    }

    /// <summary>One job per qube; the ones that cannot take the action are named, the others go ahead.</summary>
    private async Task ActOnAllAsync(LifecycleAction action)
    {
        var targets = Names ?? [];
        if (LifecycleRules.NeedsConfirmation(action) && !await ConfirmKillAsync($"Kill {targets.Count} qubes?",
                $"Killing stops {string.Join(", ", targets)} at once: unsaved work in them is lost."))
            return;
        Dictionary<string, IReadOnlyList<string>>? confirmed = null;
        if (action == LifecycleAction.Shutdown)
        {
            // Qubes shuts down a netvm with the qubes using it, in one go, without asking: only the clients left running are asked about.
            var cutOffs = new List<NetworkCutOff>();
            foreach (var name in targets) if (await Commands.CutOffIfStoppedAsync(name) is { Any: true } c) cutOffs.Add(c);
            var asked = cutOffs.Select(c => c with { Clients = c.Clients.Except(targets).ToList(), Behind = c.Behind.Except(targets).ToList() })
                .Where(c => c.Any).ToList();
            if (asked.Count > 0 && !await ConfirmCutOffAsync(asked)) return;
            confirmed = cutOffs.ToDictionary(c => c.Qube, c => c.Clients);
        }
        var outcomes = await Commands.RunManyAsync(targets, action, confirmed);
        foreach (var o in outcomes) if (o.Job is { } job) MyJobs.Track(job.Id);
        var queued = outcomes.Where(o => o.Done).Select(o => o.Qube).ToList();
        var refused = outcomes.Where(o => !o.Done).Select(o => o.Refusal!).ToList();
        if (queued.Count > 0) Snackbar.Add($"{Verb(action)}: {queued.Count} task(s) queued ({string.Join(", ", queued)}).", Severity.Info);
        foreach (var reason in refused) Snackbar.Add(reason, Severity.Warning);
        await Done.InvokeAsync();
    }

    private async Task<bool> ConfirmKillAsync(string title, string text) =>
        await Dialogs.ShowMessageBoxAsync(title, text, yesText: "Kill", cancelText: "Cancel") == true;

    private async Task<bool> ConfirmCutOffAsync(IReadOnlyList<NetworkCutOff> cutOffs)
    {
        var dialog = await Dialogs.ShowAsync<CutOffDialog>(cutOffs.Count == 1 ? $"Shut down {cutOffs[0].Qube}?" : "Shut down netvms?",
            new DialogParameters<CutOffDialog> { { d => d.CutOffs, cutOffs } },
            new DialogOptions { MaxWidth = MaxWidth.Small, CloseOnEscapeKey = true });
        return await dialog.Result is { Canceled: false };
    }

    /// <summary>Queues the action's job and counts it as this tab's; a refusal comes back as its sentence.</summary>
    private async Task<(Job? Job, string? Refusal)> QueueAsync(LifecycleAction action, string name, IReadOnlyList<string>? confirmedCutOff)
    {
        try
        {
            var job = confirmedCutOff is not null ? await Commands.ShutdownAsync(name, confirmedCutOff) : await Commands.RunAsync(name, action);
            MyJobs.Track(job.Id);
            return (job, null);
        }
        catch (RefusalException e)
        {
            return (null, e.Message);
        }
    }
}

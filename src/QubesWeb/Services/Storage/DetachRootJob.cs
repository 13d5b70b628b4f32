using QubesWeb.Data.Qubes;
using QubesWeb.Services.Jobs;

namespace QubesWeb.Services.Storage;

/// <summary>
/// Makes an instant standalone or clone independent of the qube it was made from, in the background (see
/// <see cref="RootDetach"/>). Its lock is its own, not the qube's: the qube starts, stops and commits while it runs. A
/// pause (<see cref="DetachCommands"/>) cancels it and is stored, so it is not queued again at start-up until resumed;
/// any other stop leaves it to be queued again at the next start, where it starts over from what the image is (always
/// consistent).
/// </summary>
public sealed class DetachRootJob(RootDetach detach, Inventory inventory, IServiceProvider services) : IJobKind
{
    public JobKind Kind => JobKind.Detach;

    public string Describe(string target) => $"Make {target} independent of its source";

    public string LockName(string target) => "detach:" + target;

    /// <summary>The part of the job's progress the copy takes (the rest is the swap and its record).</summary>
    private const int CopyFrom = 1, CopyTo = 95;

    /// <summary>How much of the source's data a detach job at <paramref name="jobProgress"/> percent has copied, in percent.</summary>
    public static int CopiedPercent(int jobProgress) => Math.Clamp((jobProgress - CopyFrom) * 100 / (CopyTo - CopyFrom), 0, 100);

    public async Task ValidateAsync(string target, string? arguments, CancellationToken ct)
    {
        QubeRules.ValidateName(target);
        if (await detach.DependencyAsync(target, ct) is null)
            throw await inventory.FindAsync(target, ct) is null ? QubeRuleException.NoQube(target)
                : new QubeRuleException($"'{QubeRules.Shown(target)}' is independent already: its root reads nothing from another qube.");
    }

    public async Task RunAsync(JobContext job, CancellationToken ct)
    {
        var dependency = await detach.DependencyAsync(job.Target, ct);
        if (dependency is null)
        {
            await job.LogAsync($"{job.Target} is independent already.");
            return;
        }
        var copying = $"Copying {dependency.Source} revision {dependency.SourceRevision}";
        await job.ProgressAsync(CopyFrom, copying);
        var progress = job.TrackTool(CopyFrom, CopyTo, p => $"{copying}: {p:0}%");
        // Other jobs run to their end when the console stops; a copy of a big root would hold the stop for minutes, and
        // it loses nothing by stopping: it is queued again at the next start.
        // Cancelled through the engine, so the task reads "Cancelled" rather than failed.
        // (No host lifetime where the console's services run without a host, as in component tests: nothing to stop with.)
        var stoppingToken = services.GetService<IHostApplicationLifetime>()?.ApplicationStopping ?? CancellationToken.None;
        await using var stopping = stoppingToken.Register(() => _ = job.Jobs.CancelAsync(job.JobId, CancellationToken.None));
        try
        {
            await detach.DetachAsync(job.Target, progress.Report, text => job.LogAsync(text), ct);
            await progress.DrainAsync();
        }
        catch (OperationCanceledException)
        {
            await progress.DrainAsync();
            await job.LogAsync($"Stopped: {job.Target} still reads {dependency.Source} revision {dependency.SourceRevision}, as before; the copy starts again when resumed (or at the console's next start, unless paused).");
            throw;
        }
        await job.LogAsync($"{job.Target} is independent: its root no longer reads {dependency.Source} revision {dependency.SourceRevision}, which is no longer pinned for it.");
    }

    public Task RecoverAsync(JobContext job, CancellationToken ct) =>
        job.LogAsync("Start-up recovery removed an unfinished copy, if any: the root reads as before, through its source. The detach is queued again.");
}

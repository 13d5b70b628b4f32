using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Services.Jobs;

namespace QubesWeb.Services.Storage;

/// <summary>Pause and resume of an instant copy's detach, as the qube page offers them.</summary>
public sealed class DetachCommands(JobEngine jobs, RootDetach detach)
{
    /// <summary>How much of its copy a detach job whose progress is <paramref name="jobProgress"/> has made, in percent.</summary>
    public static int CopiedPercent(int jobProgress) => DetachRootJob.CopiedPercent(jobProgress);

    /// <summary>The detach job of <paramref name="qube"/> that is queued or running, if any.</summary>
    public async Task<Job?> ActiveAsync(string qube, CancellationToken ct = default) =>
        (await jobs.QueryAsync(new JobQuery { Target = qube, States = [JobState.Queued, JobState.Running] }, ct))
        .FirstOrDefault(j => JobKind.Detach.Is(j));

    /// <summary>
    /// Stops the copy and keeps it stopped, across restarts, until <see cref="ResumeAsync"/>: the qube goes on reading
    /// through its source, and the source's revision stays pinned. The pause is stored before the cancel, so a job
    /// that sees the cancel never races a start-up queueing it again.
    /// </summary>
    public async Task PauseAsync(string qube, CancellationToken ct = default)
    {
        if (await detach.DependencyAsync(qube, ct) is null)
            throw new QubeRuleException($"'{QubeRules.Shown(qube)}' is independent already; there is no copy to pause.");
        await detach.SetPausedAsync(qube, true, ct);
        if (await ActiveAsync(qube, ct) is { } job)
        {
            await jobs.CancelAsync(job.Id, ct);
            // Returns once the copy has stopped (its part file gone): a resume right after must not find it still running.
            await jobs.WaitAsync(job.Id, ct);
        }
    }

    /// <summary>Queues the detach again; the copy starts from what the image is.</summary>
    public async Task<Job> ResumeAsync(string qube, CancellationToken ct = default)
    {
        if (await ActiveAsync(qube, ct) is { } running) return running;
        // Cleared before the queueing: a restart before the job runs queues it again.
        await detach.SetPausedAsync(qube, false, ct);
        var job = await jobs.EnqueueAsync(JobKind.Detach, qube, ct);
        return job;
    }
}

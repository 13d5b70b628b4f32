using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;

namespace QubesWeb.Services.Storage;

public sealed record CommitRootRequest(string Reason);

/// <summary>Commits the dirty overlay of a template or standalone that stopped without a job of the console.</summary>
public sealed class CommitRootJob(RootLifecycle lifecycle, IHypervisor hypervisor) : IJobKind
{
    public JobKind Kind => JobKind.Commit;
    public string Describe(string target) => $"Commit the root of {target}";

    public async Task ValidateAsync(string target, string? arguments, CancellationToken ct)
    {
        if (hypervisor.GetDomain(target)?.State is not RunState.Halted)
            throw new QubeRuleException($"'{target}' is not halted; its root is committed when it stops.");
        if (!await lifecycle.HasDirtyOverlayAsync(target, ct))
            throw new QubeRuleException($"'{target}' has no uncommitted changes.");
    }

    public async Task RunAsync(JobContext job, CancellationToken ct)
    {
        var request = job.ArgumentsAs<CommitRootRequest>();
        if (hypervisor.GetDomain(job.Target)?.State is not RunState.Halted)
        {
            await job.LogAsync($"{job.Target} runs again; its writes stay in its dirty overlay and are committed when it stops.");
            return;
        }
        await job.ProgressAsync(30, "Committing");
        var outcome = await lifecycle.SettleStoppedAsync(job.Target, request.Reason, DateTime.UtcNow, text => job.LogAsync(text), CancellationToken.None);
        if (outcome.CommittedRevision is null && !outcome.DiscardedUnchanged)
            await job.LogAsync("Nothing was left to commit.");
    }

    public Task RecoverAsync(JobContext job, CancellationToken ct) =>
        job.LogAsync("Start-up recovery finished or dropped the commit: the root is on a committed revision.");
}

public sealed record RevertRootRequest(int Revision);

/// <summary>Makes an older revision of a template's root current again (Qubes' qvm-volume revert).</summary>
public sealed class RevertRootJob(RootRevisions revisions, IHypervisor hypervisor, EstateMonitor estate) : IJobKind
{
    public JobKind Kind => JobKind.Revert;
    public string Describe(string target) => $"Revert the root of {target}";

    public async Task ValidateAsync(string target, string? arguments, CancellationToken ct)
    {
        var request = JobArguments.Parse<RevertRootRequest>(arguments);
        var history = await revisions.HistoryAsync(target, ct)
            ?? throw new QubeRuleException($"'{QubeRules.Shown(target)}' has no root of its own with revisions (only templates and standalones do).");
        if (estate.StateOf(target) is not RunState.Halted)
            throw new QubeRuleException($"'{target}' is running; shut it down before reverting its root.");
        if (history.Revisions.All(r => r.Number != request.Revision || r.State != Data.Qubes.RevisionState.Committed))
            throw new QubeRuleException($"'{target}' has no revision {request.Revision}.");
        if (history.Current == request.Revision)
            throw new QubeRuleException($"Revision {request.Revision} is already current.");
    }

    public async Task RunAsync(JobContext job, CancellationToken ct)
    {
        var request = job.ArgumentsAs<RevertRootRequest>();
        await job.ProgressAsync(50, $"Reverting to revision {request.Revision}");
        var previous = await revisions.RevertAsync(job.Target, request.Revision, hypervisor.GetDomain(job.Target)?.State is RunState.Halted, ct);
        await job.LogAsync($"The root of {job.Target} is on revision {request.Revision} again; revision {previous} is kept, so this can be undone.");
        var outdated = (await revisions.HistoryAsync(job.Target, ct))!.Revisions.Where(r => r.Number != request.Revision).SelectMany(r => r.UsedBy).ToList();
        if (outdated.Count > 0)
            await job.LogAsync($"Outdated until they restart: {string.Join(", ", outdated)}.");
    }

    public Task RecoverAsync(JobContext job, CancellationToken ct) =>
        job.LogAsync("A revert is one write to the inventory: it happened entirely or not at all.");
}

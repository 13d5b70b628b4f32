using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;

namespace QubesWeb.Services.Storage;

/// <param name="DropOldRevisions">Delete the old revisions too (no revert to them afterwards): they hold the space.</param>
public sealed record CompactRequest(bool DropOldRevisions = true);

/// <summary>Wins back the space a template's (or standalone's) root holds for data deleted inside it.</summary>
public sealed class CompactRootJob(RootCompaction compaction, RootRevisions revisions, RootDetach detach, IHypervisor hypervisor, EstateMonitor estate) : IJobKind
{
    public JobKind Kind => JobKind.Compact;
    public string Describe(string target) => $"Compact the root of {target}";

    public async Task ValidateAsync(string target, string? arguments, CancellationToken ct)
    {
        var history = await revisions.HistoryAsync(target, ct)
            ?? throw new QubeRuleException($"'{QubeRules.Shown(target)}' has no root of its own with revisions (only templates and standalones do).");
        if (estate.StateOf(target) is not RunState.Halted)
            throw new QubeRuleException($"'{target}' is running; shut it down before compacting its root.");
        if (history.HasDirtyOverlay)
            throw new QubeRuleException($"'{target}' has changes from its last run that are not committed yet; wait for the commit, then compact.");
        if (await detach.DependencyAsync(target, ct) is { } dependency)
            throw new QubeRuleException($"'{target}' still reads part of its root from {dependency.Source}; wait until it is independent (its detach finished), then compact.");
    }

    public async Task RunAsync(JobContext job, CancellationToken ct)
    {
        var request = job.Arguments is null ? new CompactRequest() : job.ArgumentsAs<CompactRequest>();
        await job.ProgressAsync(2, "Compacting");
        var progress = job.TrackTool(2, 92, p => $"Writing the compacted root: {p:0}%");
        var (revision, before, after) = await compaction.CompactAsync(job.Target, hypervisor.GetDomain(job.Target)?.State is RunState.Halted,
            request.DropOldRevisions, progress.Report, text => job.LogAsync(text), ct, job.JobId);
        await progress.DrainAsync();
        var history = (await revisions.HistoryAsync(job.Target, CancellationToken.None))!;
        var waiting = history.Revisions.Where(r => r.Released).ToList();
        if (waiting.Count == 0)
        {
            await job.LogAsync($"Compacted revision {revision} of {job.Target}: its revisions took {Format.Bytes(before)}, now {Format.Bytes(after)}; won {Format.Bytes(Math.Max(0, before - after))}.");
            return;
        }
        // Old revisions still read cannot go yet: "now" alone would report the compacted copy beside them, larger than
        // before and nothing won. Say what they hold until they go, and what is won once they do.
        var then = after - waiting.Sum(r => r.SizeBytes);
        var numbers = string.Join(", ", waiting.Select(r => r.Number).Order());
        await job.LogAsync($"Compacted revision {revision} of {job.Target}: its revisions took {Format.Bytes(before)}; "
                           + $"they take {Format.Bytes(after)} while old revision{(waiting.Count == 1 ? "" : "s")} {numbers} ({Format.Bytes(waiting.Sum(r => r.SizeBytes))}) "
                           + $"{(waiting.Count == 1 ? "is" : "are")} still read, then {Format.Bytes(then)}: won {Format.Bytes(Math.Max(0, before - then))} once "
                           + $"{(waiting.Count == 1 ? "it is" : "they are")} deleted.");
        var copies = await detach.CopiesOfAsync(job.Target, CancellationToken.None);
        foreach (var r in waiting)
        {
            // Instant copies still copying from it are named as such: they let go when independent, not at a stop.
            var copying = copies.Where(c => c.Revision == r.Number).Select(c => c.Qube).Order(StringComparer.Ordinal).ToList();
            if (copying.Count > 0 && r.UsedBy.All(copying.Contains))
            {
                await job.LogAsync($"Old revision {r.Number} stays while {string.Join(", ", copying)} {(copying.Count == 1 ? "is" : "are")} made independent of it; it is deleted once {(copying.Count == 1 ? "that copy is" : "they are")} done, and this log says what that won.");
                continue;
            }
            await job.LogAsync(r.UsedBy.Count > 0
                ? $"Old revision {r.Number} stays while {string.Join(", ", r.UsedBy)} run{(r.UsedBy.Count == 1 ? "s" : "")} on it; it is deleted when {(r.UsedBy.Count == 1 ? "that qube stops or restarts" : "they have all stopped or restarted")}, and this log says what that won."
                : $"Old revision {r.Number} stays while a copy is made from it; it is deleted once nothing reads it, and this log says what that won.");
        }
    }

    public Task RecoverAsync(JobContext job, CancellationToken ct) =>
        job.LogAsync("Start-up recovery removed an unfinished compacted copy, or kept a finished swap: the root reads as before either way.");
}

using QubesWeb.Components.Shared;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;

namespace QubesWeb.Services.Storage;

/// <param name="DropOldRevisions">Delete the old revisions too (no revert to them afterwards): they hold the space.</param>
public sealed record CompactRequest(bool DropOldRevisions = true);

/// <summary>Wins back the space a template's (or standalone's) root holds for data deleted inside it.</summary>
public sealed class CompactRootJob(RootVolumes roots, IHypervisor hypervisor, EstateMonitor estate) : IJobKind
{
    public const string KindName = "compact";
    public string Kind => KindName;
    public string Describe(string target) => $"Compact the root of {target}";

    public async Task ValidateAsync(string target, string? arguments, CancellationToken ct)
    {
        var history = await roots.HistoryAsync(target, ct)
            ?? throw new QubeRuleException($"'{Inventory.Shown(target)}' has no root of its own with revisions (only templates and standalones do).");
        if (estate.StateOf(target) is not RunState.Halted)
            throw new QubeRuleException($"'{target}' is running; shut it down before compacting its root.");
        if (history.HasDirtyOverlay)
            throw new QubeRuleException($"'{target}' has changes from its last run that are not committed yet; wait for the commit, then compact.");
    }

    public async Task RunAsync(JobContext job, CancellationToken ct)
    {
        var request = job.Arguments is null ? new CompactRequest() : job.ArgumentsAs<CompactRequest>();
        await job.ProgressAsync(2, "Compacting");
        var progress = job.TrackTool(2, 92, p => $"Writing the compacted root: {p:0}%");
        var (revision, before, after) = await roots.CompactAsync(job.Target, hypervisor.GetDomain(job.Target)?.State is RunState.Halted,
            request.DropOldRevisions, progress.Report, text => job.LogAsync(text), ct);
        await progress.DrainAsync();
        var won = Math.Max(0, before - after);
        await job.LogAsync($"Compacted revision {revision} of {job.Target}: its revisions took {Format.Bytes(before)}, now {Format.Bytes(after)}; won {Format.Bytes(won)}.");
        var held = (await roots.HistoryAsync(job.Target, CancellationToken.None))!.Revisions.Where(r => r.Number != revision && r.UsedBy.Count > 0).ToList();
        foreach (var r in held)
            await job.LogAsync($"Old revision {r.Number} stays while {string.Join(", ", r.UsedBy)} run{(r.UsedBy.Count == 1 ? "s" : "")} on it; it goes when they stop, and its space with it.");
    }

    public Task RecoverAsync(JobContext job, CancellationToken ct) =>
        job.LogAsync("Start-up recovery removed an unfinished compacted copy, or kept a finished swap: the root reads as before either way.");
}

using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Services.Jobs;

namespace QubesWeb.Services.Storage;

/// <summary>
/// The promise a compaction makes about old revisions a running qube still reads: they are no longer kept for a
/// revert, and go when their last reader stops or restarts. The promise is a flag on the revision's row (so a
/// restart of the console keeps it), set here; retention honours it (<see cref="RootRetention.KeptNumbers"/>), and
/// when such a revision finally goes, the compaction's task log says so and what it freed.
/// </summary>
public sealed class ReleasedRevisions(IServiceProvider services, ILogger<ReleasedRevisions> log)
{
    /// <summary>
    /// Marks every old revision of <paramref name="root"/> still there after a compaction's retention (a running qube
    /// reads it, or a copy pins it) as let go of by job <paramref name="jobId"/>. The caller saves.
    /// </summary>
    public static IReadOnlyList<RootRevision> MarkHeld(Volume root, long? jobId)
    {
        var held = root.Revisions.Where(r => r.State == RevisionState.Committed && r.Number != root.CurrentRevision).ToList();
        foreach (var r in held)
        {
            r.Released = true;
            r.ReleasedByJobId ??= jobId;
        }
        return held;
    }

    /// <summary>
    /// Says, in the log of the compaction that let go of them, that released revisions of <paramref name="qube"/> are
    /// now gone and what that freed: the compaction's own report could only promise it.
    /// </summary>
    public async Task ReportGoneAsync(string qube, IReadOnlyList<RootRevision> gone, long bytesBefore, long bytesAfter)
    {
        foreach (var byJob in gone.Where(r => r.Released).GroupBy(r => r.ReleasedByJobId))
        {
            var numbers = byJob.Select(r => r.Number).Order().ToList();
            var text = $"Deleted old revision{(numbers.Count == 1 ? "" : "s")} {string.Join(", ", numbers)} of {qube}, let go of by "
                       + $"{(byJob.Key is { } id ? $"compaction #{id}" : "a compaction")}, now that no running qube reads "
                       + $"{(numbers.Count == 1 ? "it" : "them")}: won {Format.Bytes(Math.Max(0, bytesBefore - bytesAfter))}; "
                       + $"its revisions take {Format.Bytes(bytesAfter)} now (they took {Format.Bytes(bytesBefore)}).";
            log.LogInformation("{Text}", text);
            if (byJob.Key is not { } jobId) continue;
            try
            {
                // Resolved here, not injected: the job engine is built from the job kinds, which need the root volumes.
                await services.GetRequiredService<JobEngine>().AppendLogAsync(jobId, text, JobLogLevel.Info);
            }
            catch (Exception e) when (e is InvalidOperationException or Microsoft.EntityFrameworkCore.DbUpdateException)
            {
                log.LogInformation("Could not add to the log of task #{Job}: {Error}", jobId, e.Message);
            }
        }
    }
}

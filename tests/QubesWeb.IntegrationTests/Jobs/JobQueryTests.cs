// What the tasks pages read from the job engine, on the real console's SQLite file: the filtered list (QueryAsync)
// and the log lines after the last one a page shows (LogSinceAsync). Rows are written straight into the database where
// a test needs jobs in given states; the log of a real job run checks that both reads agree with GetAsync.
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Qubes;
using QubesWeb.Services.Estate;
using InventoryService = QubesWeb.Data.Qubes.Inventory;

namespace QubesWeb.IntegrationTests.JobTests;

public sealed class JobQueryTests
{
    /// <summary>Writes finished or pending jobs as rows (no lock, never queued in the engine), oldest first.</summary>
    private static async Task<List<long>> InsertAsync(ConsoleHost host, params (string Target, JobState State)[] jobs)
    {
        await using var db = await host.Get<IDbContextFactory<InventoryDbContext>>().CreateDbContextAsync();
        var ids = new List<long>();
        foreach (var (target, state) in jobs)
        {
            var job = new Job { Kind = "start", Target = target, State = state, CreatedUtc = DateTime.UtcNow, Step = state.ToString() };
            db.Jobs.Add(job);
            await db.SaveChangesAsync();
            ids.Add(job.Id);
        }
        return ids;
    }

    private static async Task<List<long>> LinesAsync(ConsoleHost host, long jobId, params string[] texts)
    {
        await using var db = await host.Get<IDbContextFactory<InventoryDbContext>>().CreateDbContextAsync();
        var lines = texts.Select(t => new JobLogLine { JobId = jobId, Text = t, Level = JobLogLevel.Info, TimeUtc = DateTime.UtcNow }).ToList();
        foreach (var line in lines)
        {
            db.JobLog.Add(line);
            await db.SaveChangesAsync();
        }
        return lines.Select(l => l.Id).ToList();
    }

    [Fact]
    public async Task Filtering_by_states_keeps_only_those_states_newest_first()
    {
        using var node = new TestNode();
        await using var host = await ConsoleHost.StartAsync(libvirtUri: node.Uri, demo: false);
        var ids = await InsertAsync(host, ("work", JobState.Succeeded), ("vault", JobState.Failed), ("work", JobState.Interrupted),
            ("vault", JobState.Queued), ("work", JobState.Cancelled), ("sys-net", JobState.Failed));
        var jobs = host.Get<JobEngine>();

        var failed = await jobs.QueryAsync(new JobQuery { States = [JobState.Failed, JobState.Interrupted] });
        var all = await jobs.QueryAsync(new JobQuery());
        var none = await jobs.QueryAsync(new JobQuery { States = [JobState.Running] });

        Assert.Equal([ids[5], ids[2], ids[1]], failed.Select(j => j.Id));
        Assert.Equal(Enumerable.Reverse(ids), all.Select(j => j.Id));
        Assert.Empty(none);
        Assert.All(all, j => Assert.Empty(j.Log));
    }

    [Fact]
    public async Task Filtering_by_qube_matches_part_of_the_name_ignoring_case_or_exactly_the_name()
    {
        using var node = new TestNode();
        await using var host = await ConsoleHost.StartAsync(libvirtUri: node.Uri, demo: false);
        var ids = await InsertAsync(host, ("work", JobState.Succeeded), ("work-web", JobState.Failed), ("vault", JobState.Succeeded),
            ("my_vm", JobState.Succeeded), ("myxvm", JobState.Succeeded));
        var jobs = host.Get<JobEngine>();

        var part = await jobs.QueryAsync(new JobQuery { TargetContains = " WORK " });
        var exact = await jobs.QueryAsync(new JobQuery { Target = "work" });
        var underscore = await jobs.QueryAsync(new JobQuery { TargetContains = "y_v" });
        var failedOnWork = await jobs.QueryAsync(new JobQuery { TargetContains = "work", States = [JobState.Failed] });

        Assert.Equal([ids[1], ids[0]], part.Select(j => j.Id));
        Assert.Equal([ids[0]], exact.Select(j => j.Id));
        // '_' is a character of the name, not a wildcard.
        Assert.Equal([ids[3]], underscore.Select(j => j.Id));
        Assert.Equal([ids[1]], failedOnWork.Select(j => j.Id));
    }

    [Fact]
    public async Task Take_returns_only_the_newest_jobs()
    {
        using var node = new TestNode();
        await using var host = await ConsoleHost.StartAsync(libvirtUri: node.Uri, demo: false);
        var ids = await InsertAsync(host, Enumerable.Range(0, 7).Select(_ => ("work", JobState.Succeeded)).ToArray());

        var newest = await host.Get<JobEngine>().QueryAsync(new JobQuery { Take = 3 });

        Assert.Equal([ids[6], ids[5], ids[4]], newest.Select(j => j.Id));
    }

    [Fact]
    public async Task Log_since_a_line_returns_only_the_later_lines_of_that_job_in_order()
    {
        using var node = new TestNode();
        await using var host = await ConsoleHost.StartAsync(libvirtUri: node.Uri, demo: false);
        var ids = await InsertAsync(host, ("work", JobState.Running), ("vault", JobState.Running));
        var first = await LinesAsync(host, ids[0], "one", "two");
        await LinesAsync(host, ids[1], "other job");
        var later = await LinesAsync(host, ids[0], "three", "four");
        var jobs = host.Get<JobEngine>();

        var all = await jobs.LogSinceAsync(ids[0], 0);
        var since = await jobs.LogSinceAsync(ids[0], first[1]);
        var nothing = await jobs.LogSinceAsync(ids[0], later[1]);
        var unknown = await jobs.LogSinceAsync(ids[1] + 1000, 0);

        Assert.Equal(["one", "two", "three", "four"], all.Select(l => l.Text));
        Assert.Equal(["three", "four"], since.Select(l => l.Text));
        Assert.Equal(later, since.Select(l => l.Id));
        Assert.Empty(nothing);
        Assert.Empty(unknown);
    }

    [Fact]
    public async Task The_log_of_a_real_job_read_in_two_parts_is_the_log_get_returns()
    {
        using var node = new TestNode();
        await using var host = await ConsoleHost.StartAsync(libvirtUri: node.Uri, demo: false);
        var inventory = host.Get<InventoryService>();
        await inventory.CreateAsync(new NewQube("fedora-42", QubeClass.TemplateVM, "black"));
        await inventory.CreateAsync(new NewQube("vault", QubeClass.AppVM, "black", "fedora-42"));
        await host.Get<EstateMonitor>().ReconcileAsync();
        var jobs = host.Get<JobEngine>();

        var done = await SucceedsAsync(host, JobKind.Start, "vault");

        Assert.NotEmpty(done.Log);
        var head = (await jobs.LogSinceAsync(done.Id, 0)).Take(1).ToList();
        var tail = await jobs.LogSinceAsync(done.Id, head[0].Id);
        Assert.Equal(done.Log.Select(l => (l.Id, l.Text, l.Level)), head.Concat(tail).Select(l => (l.Id, l.Text, l.Level)));
        var found = await jobs.FindAsync(done.Id);
        Assert.NotNull(found);
        Assert.Equal(JobState.Succeeded, found.State);
        Assert.Empty(found.Log);
        Assert.Null(await jobs.FindAsync(done.Id + 1000));
    }
}

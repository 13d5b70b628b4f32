// The tasks list and a task's page rendered with bUnit over the real job engine and its SQLite file.
//
// Determinism: jobs in given states are written as rows (a queued job with its qube lock, as EnqueueAsync leaves it,
// but never handed to the engine's workers, so it stays queued until the test cancels it). Live updates come from
// real job runs of a test job kind that stops at a gate the test opens: the job logs a line and reports progress,
// waits, and only when the test releases it writes the next line. So "a line written after render" is written after
// render by construction, through the engine's own JobContext.LogAsync and its JobChanged push; nothing sleeps.
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Web;
using QubesWeb.Data.Jobs;
using QubesWeb.Services.Jobs;
using TaskDetailPage = QubesWeb.Components.Pages.Tasks.TaskDetail;
using TasksPage = QubesWeb.Components.Pages.Tasks.Tasks;

namespace QubesWeb.ComponentTests;

public sealed class TaskPagesTests : ConsoleTestContext
{
    private readonly GatedJob _gate = new();

    public TaskPagesTests() : base(seeded: false)
    {
        Services.AddSingleton<IJobKind>(_gate);
    }

    /// <summary>A job kind that logs, reports progress, then waits for the test before it logs again and ends.</summary>
    private sealed class GatedJob : IJobKind
    {
        public static readonly JobKind KindName = new("test-gated");
        public const string FirstLine = "First line, written before the page rendered.";
        public const string SecondLine = "Second line: <b>written</b> after render & shown as text.";

        public TaskCompletionSource Waiting { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public JobKind Kind => KindName;
        public string Describe(string target) => $"Gated step on {target}";
        public Task ValidateAsync(string target, string? arguments, CancellationToken ct) => Task.CompletedTask;
        public Task RecoverAsync(JobContext job, CancellationToken ct) => Task.CompletedTask;

        public async Task RunAsync(JobContext job, CancellationToken ct)
        {
            await job.ProgressAsync(40, "Waiting for the test");
            await job.LogAsync(FirstLine);
            Waiting.TrySetResult();
            // Bounded, so a failing test cannot leave the job (and the engine's stop at disposal) waiting for ever.
            await Release.Task.WaitAsync(Wait, ct);
            await job.LogAsync(SecondLine, JobLogLevel.Warning);
        }
    }

    /// <summary>Writes jobs as rows, oldest first; queued and running ones hold their qube's lock as the engine's would.</summary>
    private async Task<List<long>> InsertAsync(params (string Target, JobState State, string? Error)[] jobs)
    {
        await using var db = await Contexts.CreateDbContextAsync();
        var ids = new List<long>();
        foreach (var (target, state, error) in jobs)
        {
            var finished = state is not JobState.Queued and not JobState.Running;
            var job = new Job
            {
                Kind = "start", Target = target, State = state, Error = error, Step = state.ToString(), CreatedUtc = DateTime.UtcNow.AddMinutes(-5),
                StartedUtc = state == JobState.Queued ? null : DateTime.UtcNow.AddMinutes(-4), FinishedUtc = finished ? DateTime.UtcNow.AddMinutes(-3) : null,
                Progress = state == JobState.Succeeded ? 100 : 30,
            };
            db.Jobs.Add(job);
            await db.SaveChangesAsync();
            if (!finished)
            {
                db.Locks.Add(new QubeLock { QubeName = target, JobId = job.Id, AcquiredUtc = DateTime.UtcNow });
                await db.SaveChangesAsync();
            }
            ids.Add(job.Id);
        }
        return ids;
    }

    private async Task<Job> StartGatedJobAsync(string target)
    {
        var job = await Jobs.EnqueueAsync(GatedJob.KindName, target);
        await _gate.Waiting.Task.WaitAsync(Wait);
        return job;
    }

    private static List<IElement> Rows(IRenderedComponent<TasksPage> cut) => cut.FindAll("#tasks-table tbody tr.qw-job-row").ToList();

    private static List<long> Ids(IRenderedComponent<TasksPage> cut) =>
        Rows(cut).Select(r => long.Parse(r.QuerySelector("[data-job-id]")!.GetAttribute("data-job-id")!)).ToList();

    private static IElement RowOf(IRenderedComponent<TasksPage> cut, long id) =>
        cut.Find($"[data-job-id='{id}']").Closest("tr")!;

    private static string StateOf(IElement row) => row.QuerySelector("[data-job-state]")!.GetAttribute("data-job-state")!;

    private static List<string> LogTexts(IRenderedComponent<TaskDetailPage> cut) =>
        cut.FindAll("#task-log .qw-log-text").Select(e => e.TextContent).ToList();

    [Fact]
    public async Task The_list_shows_every_job_newest_first_with_its_qube_state_step_and_a_link_to_its_page()
    {
        var ids = await InsertAsync(("work", JobState.Succeeded, null), ("vault", JobState.Running, null));

        var cut = Render<TasksPage>();

        cut.WaitForAssertion(() => Assert.Equal([ids[1], ids[0]], Ids(cut)), Wait);
        var vault = RowOf(cut, ids[1]);
        Assert.Equal("running", StateOf(vault));
        Assert.Equal($"/tasks/{ids[1]}", vault.QuerySelector("[data-job-id]")!.GetAttribute("href"));
        Assert.Equal("/qubes/vault", vault.QuerySelector("[data-qube='vault']")!.GetAttribute("href"));
        Assert.Equal("30", vault.QuerySelector("[data-progress]")!.GetAttribute("data-progress"));
        Assert.Contains("Start vault", vault.TextContent);
        Assert.Contains("Running", vault.QuerySelectorAll("td").Select(td => td.TextContent.Trim()));
        Assert.NotNull(vault.QuerySelector($"button[aria-label='Cancel task #{ids[1]}']"));
        Assert.Null(RowOf(cut, ids[0]).QuerySelector("button"));
    }

    [Fact]
    public async Task The_state_filter_in_the_url_shows_only_failed_and_interrupted_jobs()
    {
        var ids = await InsertAsync(("work", JobState.Succeeded, null), ("vault", JobState.Failed, "boom"),
            ("devbox", JobState.Interrupted, "console stopped"), ("work", JobState.Cancelled, null));
        Nav.NavigateTo("tasks?state=failed");

        var cut = Render<TasksPage>();

        cut.WaitForAssertion(() => Assert.Equal([ids[2], ids[1]], Ids(cut)), Wait);
        Assert.Contains("mud-chip-selected", cut.Find("[data-filter='failed']").ClassName);
    }

    [Fact]
    public async Task Choosing_state_chips_filters_the_list_and_writes_the_filter_into_the_url()
    {
        var ids = await InsertAsync(("work", JobState.Succeeded, null), ("vault", JobState.Failed, "boom"), ("devbox", JobState.Queued, null));
        Nav.NavigateTo("tasks");
        var cut = Render<TasksPage>();
        cut.WaitForAssertion(() => Assert.Equal(3, Rows(cut).Count), Wait);

        await cut.Find("[data-filter='succeeded']").ClickAsync(new MouseEventArgs());

        cut.WaitForAssertion(() => Assert.Equal([ids[0]], Ids(cut)), Wait);
        Assert.EndsWith("/tasks?state=succeeded", Nav.Uri);

        await cut.Find("[data-filter='active']").ClickAsync(new MouseEventArgs());

        cut.WaitForAssertion(() => Assert.Equal([ids[2], ids[0]], Ids(cut)), Wait);
        Assert.EndsWith("/tasks?state=active&state=succeeded", Nav.Uri);

        await cut.Find("#task-state-all").ClickAsync(new MouseEventArgs());

        cut.WaitForAssertion(() => Assert.Equal(3, Rows(cut).Count), Wait);
        Assert.EndsWith("/tasks", Nav.Uri);
    }

    [Fact]
    public async Task Typing_a_qube_keeps_only_its_jobs_and_puts_it_in_the_url()
    {
        var ids = await InsertAsync(("work", JobState.Succeeded, null), ("vault", JobState.Failed, "boom"), ("work-web", JobState.Succeeded, null));
        Nav.NavigateTo("tasks");
        var cut = Render<TasksPage>();
        cut.WaitForAssertion(() => Assert.Equal(3, Rows(cut).Count), Wait);

        cut.Find("input[placeholder='Qube']").Input("WORK");

        cut.WaitForAssertion(() => Assert.Equal([ids[2], ids[0]], Ids(cut)), Wait);
        Assert.EndsWith("/tasks?qube=WORK", Nav.Uri);

        cut.Find("input[placeholder='Qube']").Input("no-such-qube");

        cut.WaitForAssertion(() => Assert.Equal("No task matches these filters.", cut.Find("#tasks-none").TextContent), Wait);
    }

    [Fact]
    public async Task State_and_qube_from_a_shared_link_combine()
    {
        var ids = await InsertAsync(("work", JobState.Succeeded, null), ("work", JobState.Failed, "boom"), ("vault", JobState.Failed, "boom"));
        Nav.NavigateTo("tasks?state=failed&qube=work");

        var cut = Render<TasksPage>();

        cut.WaitForAssertion(() => Assert.Equal([ids[1]], Ids(cut)), Wait);
        Assert.Equal("work", cut.Find("input[placeholder='Qube']").GetAttribute("value"));
    }

    [Fact]
    public async Task Failed_and_interrupted_jobs_stand_out_and_their_error_is_shown_as_text()
    {
        const string error = "libvirt: <b>domain</b> crashed & burned";
        var ids = await InsertAsync(("work", JobState.Succeeded, null), ("vault", JobState.Failed, error), ("devbox", JobState.Interrupted, "console stopped"));

        var cut = Render<TasksPage>();

        cut.WaitForAssertion(() => Assert.Equal(3, Rows(cut).Count), Wait);
        var failed = RowOf(cut, ids[1]);
        Assert.Contains("qw-job-problem", failed.ClassList);
        Assert.Contains("qw-job-problem", RowOf(cut, ids[2]).ClassList);
        Assert.DoesNotContain("qw-job-problem", RowOf(cut, ids[0]).ClassList);
        Assert.Equal("failed", StateOf(failed));
        Assert.Equal(error, failed.QuerySelector(".qw-error")!.TextContent);
        Assert.Null(failed.QuerySelector(".qw-error b"));
    }

    [Fact]
    public async Task Cancelling_a_queued_job_marks_it_cancelled_in_the_list_and_frees_its_qube()
    {
        var ids = await InsertAsync(("vault", JobState.Queued, null));
        var cut = Render<TasksPage>();
        cut.WaitForAssertion(() => Assert.Equal("queued", StateOf(RowOf(cut, ids[0]))), Wait);

        await cut.Find($"button[aria-label='Cancel task #{ids[0]}']").ClickAsync(new MouseEventArgs());

        cut.WaitForAssertion(() => Assert.Equal("cancelled", StateOf(RowOf(cut, ids[0]))), Wait);
        Assert.Null(RowOf(cut, ids[0]).QuerySelector("button"));
        Assert.Contains("Cancelled before it started", RowOf(cut, ids[0]).TextContent);
        await using var db = await Contexts.CreateDbContextAsync();
        Assert.False(await db.Locks.AnyAsync(l => l.QubeName == "vault"));
    }

    [Fact]
    public async Task A_running_jobs_progress_step_and_end_are_pushed_to_the_list()
    {
        var cut = Render<TasksPage>();
        var job = await StartGatedJobAsync("vault");

        cut.WaitForAssertion(() =>
        {
            var row = RowOf(cut, job.Id);
            Assert.Equal("running", StateOf(row));
            Assert.Equal("40", row.QuerySelector("[data-progress]")!.GetAttribute("data-progress"));
            Assert.Contains("Waiting for the test", row.TextContent);
        }, Wait);

        _gate.Release.SetResult();

        cut.WaitForAssertion(() =>
        {
            var row = RowOf(cut, job.Id);
            Assert.Equal("succeeded", StateOf(row));
            Assert.Equal("100", row.QuerySelector("[data-progress]")!.GetAttribute("data-progress"));
        }, Wait);
    }

    [Fact]
    public async Task The_job_page_appends_a_log_line_written_after_it_rendered()
    {
        var job = await StartGatedJobAsync("vault");
        var cut = Render<TaskDetailPage>(p => p.Add(x => x.Id, job.Id));
        cut.WaitForAssertion(() =>
        {
            Assert.Equal([GatedJob.FirstLine], LogTexts(cut));
            Assert.Equal("running", cut.Find("[data-job-state]").GetAttribute("data-job-state"));
            Assert.Equal("40", cut.Find("#task-progress").GetAttribute("data-progress"));
            Assert.Equal("Waiting for the test", cut.Find("#task-step").TextContent);
        }, Wait);
        var firstLineId = cut.Find("#task-log [data-line-id]").GetAttribute("data-line-id");

        _gate.Release.SetResult();

        cut.WaitForAssertion(() =>
        {
            Assert.Equal([GatedJob.FirstLine, GatedJob.SecondLine], LogTexts(cut));
            Assert.Equal("succeeded", cut.Find("[data-job-state]").GetAttribute("data-job-state"));
        }, Wait);
        var lines = cut.FindAll("#task-log [data-line-id]");
        Assert.Equal(firstLineId, lines[0].GetAttribute("data-line-id"));
        Assert.Equal(["info", "warning"], lines.Select(l => l.GetAttribute("data-level")));
        Assert.Null(cut.Find("#task-log").QuerySelector("b"));
        Assert.Equal("Gated step on vault", Jobs.Describe(job));
        Assert.Contains("Task #" + job.Id + ": Gated step on vault", cut.Find("#task-title").TextContent);
        Assert.Equal("/qubes/vault", cut.Find("#task-target").GetAttribute("href"));
        Assert.Empty(cut.FindAll("#task-cancel"));
    }

    [Fact]
    public async Task Cancelling_a_running_job_from_its_page_ends_it_cancelled_with_the_request_in_its_log()
    {
        var job = await StartGatedJobAsync("vault");
        var cut = Render<TaskDetailPage>(p => p.Add(x => x.Id, job.Id));
        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("#task-cancel")), Wait);

        await cut.Find("#task-cancel").ClickAsync(new MouseEventArgs());

        cut.WaitForAssertion(() =>
        {
            Assert.Equal("cancelled", cut.Find("[data-job-state]").GetAttribute("data-job-state"));
            Assert.Equal([GatedJob.FirstLine, "Cancel requested.", "Cancelled."], LogTexts(cut));
            Assert.Empty(cut.FindAll("#task-cancel"));
        }, Wait);
    }

    [Fact]
    public async Task A_failed_jobs_page_shows_its_error_as_text()
    {
        var ids = await InsertAsync(("vault", JobState.Failed, "qemu: <i>no</i> disk"));

        var cut = Render<TaskDetailPage>(p => p.Add(x => x.Id, ids[0]));

        cut.WaitForAssertion(() => Assert.Equal("qemu: <i>no</i> disk", cut.Find("#task-error").TextContent.Trim()), Wait);
        Assert.Null(cut.Find("#task-error").QuerySelector("i"));
        Assert.Equal("This task wrote no log.", cut.Find("#task-log-empty").TextContent);
    }

    [Fact]
    public void An_unknown_job_id_says_there_is_no_such_task()
    {
        var cut = Render<TaskDetailPage>(p => p.Add(x => x.Id, 4242));

        cut.WaitForAssertion(() => Assert.Contains("There is no task #4242.", cut.Find("#task-missing").TextContent), Wait);
        Assert.Empty(cut.FindAll("#task-log"));
    }
}

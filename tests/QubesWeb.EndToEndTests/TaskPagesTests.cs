// The tasks pages as a user reaches them: a qube started from /qubes, its job found on /tasks, then opened, on the
// real app with its embedded demo estate, in headless Chromium.
using Microsoft.EntityFrameworkCore;
using QubesWeb.Data;
using QubesWeb.Data.Jobs;

namespace QubesWeb.EndToEndTests;

public sealed class TaskPagesTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    private const string FailedError = "Requested operation is not valid: domain is not running <work>";

    private static async Task<long> InsertFailedJobAsync(ConsoleHost host)
    {
        await using var db = await host.Get<IDbContextFactory<InventoryDbContext>>().CreateDbContextAsync();
        var start = DateTime.UtcNow.AddSeconds(-3);
        var job = new Job
        {
            Kind = "shutdown", Target = "work", State = JobState.Failed, Progress = 20, Step = "Failed", Error = FailedError,
            CreatedUtc = start, StartedUtc = start, FinishedUtc = start.AddSeconds(2),
        };
        job.Log.Add(new JobLogLine { Text = "work did not shut down within 60 s; killing it.", Level = JobLogLevel.Warning, TimeUtc = start.AddSeconds(1) });
        job.Log.Add(new JobLogLine { Text = FailedError, Level = JobLogLevel.Error, TimeUtc = start.AddSeconds(2) });
        db.Jobs.Add(job);
        await db.SaveChangesAsync();
        return job.Id;
    }

    [Fact]
    public async Task A_qube_started_from_the_list_has_its_job_on_the_tasks_page_and_its_log_on_the_jobs_page()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        await ConsolePage.OpenAsync(page, "/qubes");
        await Expect(ConsolePage.StateOf(page, "vault")).ToHaveAttributeAsync("data-state", "halted");
        await ConsolePage.Button(page, "Start vault").ClickAsync();
        await Expect(ConsolePage.StateOf(page, "vault")).ToHaveAttributeAsync("data-state", "running");

        await ConsolePage.OpenAsync(page, "/tasks");
        var row = page.Locator("#tasks-table tbody tr").Filter(new LocatorFilterOptions { HasText = "Start vault" });
        await Expect(row).ToHaveCountAsync(1);
        await Expect(row.Locator("[data-job-state]")).ToHaveAttributeAsync("data-job-state", "succeeded");
        await Expect(row.Locator("[data-progress]")).ToHaveAttributeAsync("data-progress", "100");
        await Expect(row.Locator("[data-qube='vault']")).ToHaveAttributeAsync("href", "/qubes/vault");

        // The filter is kept in the URL: a cancelled-only view of the same list has no row for the successful start.
        await ConsolePage.OpenAsync(page, "/tasks?state=cancelled");
        await Expect(page.Locator("#tasks-none")).ToHaveTextAsync("No task matches these filters.");

        // A failed job as the engine leaves one, written as a row (the demo has no way to make a start fail).
        var failedId = await InsertFailedJobAsync(host);
        await ConsolePage.OpenAsync(page, "/tasks?state=failed");
        await Expect(page.Locator("#tasks-table tbody tr.qw-job-problem")).ToHaveCountAsync(1);
        await Expect(page.Locator("#tasks-table tbody tr.qw-job-row")).ToHaveCountAsync(1);
        await Expect(page.Locator("#tasks-table tbody tr.qw-job-problem .qw-error")).ToHaveTextAsync(FailedError);
        await Screenshots.SaveAsync(page, "tasks-failed-filter");

        await ConsolePage.OpenAsync(page, "/tasks");
        await Expect(page.Locator("#tasks-table tbody tr.qw-job-row")).ToHaveCountAsync(2);
        await Screenshots.SaveAsync(page, "tasks");

        // The controls write the filter into the URL.
        await page.Locator("[data-filter='failed']").ClickAsync();
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/tasks\\?state=failed$"));
        await Expect(page.Locator("#tasks-table tbody tr.qw-job-row")).ToHaveCountAsync(1);
        await page.Locator("#task-state-all").ClickAsync();
        await Expect(page.Locator("#tasks-table tbody tr.qw-job-row")).ToHaveCountAsync(2);
        await page.GetByPlaceholder("Qube").FillAsync("vau");
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/tasks\\?qube=vau$"));
        await Expect(page.Locator("#tasks-table tbody tr.qw-job-row")).ToHaveCountAsync(1);

        await ConsolePage.OpenAsync(page, $"/tasks/{failedId}");
        await Expect(page.Locator("#task-error")).ToHaveTextAsync(FailedError);
        await Expect(page.Locator("#task-log [data-level='error'] .qw-log-text")).ToHaveTextAsync(FailedError);
        await Screenshots.SaveAsync(page, "task-detail-failed");

        // A shared link with the filter in it.
        await ConsolePage.OpenAsync(page, "/tasks?qube=vau");
        await Expect(row).ToHaveCountAsync(1);
        await Expect(page.Locator("#tasks-table tbody tr.qw-job-row")).ToHaveCountAsync(1);
        await Expect(page.GetByPlaceholder("Qube")).ToHaveValueAsync("vau");

        await row.GetByRole(AriaRole.Link, new LocatorGetByRoleOptions { Name = "Start vault" }).ClickAsync();

        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/tasks/[0-9]+$"));
        await Expect(page.Locator("#task-title")).ToContainTextAsync("Start vault");
        await Expect(page.Locator("[data-job-state]")).ToHaveAttributeAsync("data-job-state", "succeeded");
        await Expect(page.Locator("#task-progress")).ToHaveAttributeAsync("data-progress", "100");
        await Expect(page.Locator("#task-log .qw-log-text").Last).ToHaveTextAsync("vault is running.");
        await Expect(page.Locator("#task-cancel")).ToHaveCountAsync(0);
        await Screenshots.SaveAsync(page, "task-detail");
    }
}

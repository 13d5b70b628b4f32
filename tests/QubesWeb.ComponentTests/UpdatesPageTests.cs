// The updates page (/updates, Qubes' updater) rendered with bUnit over the real monitor, inventory and job engine;
// the hypervisor is the in-memory fake. The seed's updateable qubes: the templates fedora-42 and debian-13 and the
// standalone devbox; its AppVMs (sys-net, work, vault, default-dvm) have no package manager of their own. Each test
// sets the update features as a check or an update would have; the jobs the buttons queue are read back from the
// job engine (what they do afterwards against the fake does not matter here).
using Microsoft.AspNetCore.Components.Web;
using Microsoft.Extensions.Options;
using QubesWeb.Components.Pages.Updates;
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hosting;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Updates;
using UpdatesPage = QubesWeb.Components.Pages.Updates.Updates;

namespace QubesWeb.ComponentTests;

public sealed class UpdatesPageTests : ConsoleTestContext
{
    private static string Iso(DateTime utc) => utc.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);

    private Task SetFeaturesAsync(string qube, params (string Key, string? Value)[] features) =>
        Inventory.UpdateAsync(qube, new QubeChanges(Features: features.ToDictionary(f => f.Key, f => f.Value)));

    /// <summary>fedora-42 checked an hour ago with updates waiting, debian-13 checked 8 days ago (stale), devbox checked and updated 20 hours ago.</summary>
    private async Task SetCheckedStatesAsync()
    {
        var now = DateTime.UtcNow;
        await SetFeaturesAsync("fedora-42", ("updates-available", "True"), ("last-updates-check", Iso(now.AddHours(-1))));
        await SetFeaturesAsync("debian-13", ("updates-available", "False"), ("last-updates-check", Iso(now.AddDays(-8))),
            ("last-update", Iso(now.AddDays(-8))));
        await SetFeaturesAsync("devbox", ("updates-available", "False"), ("last-updates-check", Iso(now.AddHours(-20))),
            ("last-update", Iso(now.AddHours(-20))));
    }

    /// <summary>The package manager families, so the update jobs' validation has a command for each qube.</summary>
    private async Task SetDistributionsAsync()
    {
        await SetFeaturesAsync("fedora-42", ("os-distribution", "fedora"));
        await SetFeaturesAsync("debian-13", ("os-distribution", "debian"));
        await SetFeaturesAsync("devbox", ("os-distribution", "fedora"));
    }

    private IRenderedComponent<UpdatesPage> RenderPage()
    {
        RenderProviders();
        var cut = Render<UpdatesPage>();
        cut.WaitForAssertion(() => Assert.NotEmpty(cut.FindAll("#updates-grid tr[data-qube]")), Wait);
        return cut;
    }

    private static async Task ClickAsync(IRenderedComponent<UpdatesPage> cut, string selector) =>
        await await ClickFreshAsync(cut, () => cut.Find(selector));

    private static Task TickAsync(IRenderedComponent<UpdatesPage> cut, string qube) =>
        cut.InvokeAsync(() => Row(cut, qube).QuerySelector("input[type=checkbox]")!.Change(true));

    private static IElement Row(IRenderedComponent<UpdatesPage> cut, string name) => cut.Find($"#updates-grid tr[data-qube='{name}']");

    private static List<string> Names(IRenderedComponent<UpdatesPage> cut) =>
        cut.FindAll("#updates-grid tr[data-qube]").Select(r => r.GetAttribute("data-qube")!).ToList();

    private static Dictionary<string, string> Available(IRenderedComponent<UpdatesPage> cut) =>
        cut.FindAll("#updates-grid tr[data-qube]").ToDictionary(r => r.GetAttribute("data-qube")!, r => r.GetAttribute("data-available")!);

    private static List<string> Selected(IRenderedComponent<UpdatesPage> cut) =>
        cut.FindAll("#updates-grid tr[data-selected='true']").Select(r => r.GetAttribute("data-qube")!).ToList();

    /// <summary>Cancels the jobs a test queued: against the fake they would wait for a guest agent until the engine stops.</summary>
    private async Task CancelUpdateJobsAsync()
    {
        foreach (var job in await Jobs.QueryAsync(new JobQuery { States = [JobState.Queued, JobState.Running] }))
            await Jobs.CancelAsync(job.Id);
    }

    private async Task<List<(string Kind, string Target)>> UpdateJobsAsync() =>
        (await Jobs.QueryAsync(new JobQuery())).Where(j => (JobKind.Update.Is(j) || JobKind.CheckUpdates.Is(j)))
            .Select(j => (j.Kind, j.Target)).OrderBy(j => j.Target, StringComparer.Ordinal).ThenBy(j => j.Kind, StringComparer.Ordinal).ToList();

    // ---- the list ----

    [Fact]
    public void Only_templates_and_standalones_are_listed_templates_first()
    {
        var cut = RenderPage();

        Assert.Equal(["debian-13", "fedora-42", "devbox"], Names(cut));
        Assert.Contains("TemplateVM", Row(cut, "fedora-42").TextContent);
        Assert.Contains("StandaloneVM", Row(cut, "devbox").TextContent);
        Assert.Equal("/templates/fedora-42", Row(cut, "fedora-42").QuerySelector("a")!.GetAttribute("href"));
        Assert.Equal("/qubes/devbox", Row(cut, "devbox").QuerySelector("a")!.GetAttribute("href"));
        Assert.Equal("halted", Row(cut, "fedora-42").QuerySelector("[data-state]")!.GetAttribute("data-state"));
        // AppVMs get their software from their template; dom0 is not updated from here.
        foreach (var appVm in new[] { "sys-net", "work", "vault", "default-dvm", "dom0" })
            Assert.Empty(cut.FindAll($"#updates-grid tr[data-qube='{appVm}']"));
    }

    [Fact]
    public async Task Updates_available_is_YES_from_the_feature_MAYBE_when_never_or_long_ago_checked_and_NO_otherwise()
    {
        await SetCheckedStatesAsync();
        await Inventory.CreateAsync(new NewQube("arch-1", QubeClass.TemplateVM, "black")); // never checked

        var cut = RenderPage();

        Assert.Equal(new Dictionary<string, string> { ["arch-1"] = "maybe", ["debian-13"] = "maybe", ["fedora-42"] = "yes", ["devbox"] = "no" }, Available(cut));
        Assert.Equal("YES", Row(cut, "fedora-42").QuerySelector("td .mud-chip[data-available]")!.TextContent.Trim());
        Assert.Equal("MAYBE", Row(cut, "debian-13").QuerySelector("td .mud-chip[data-available]")!.TextContent.Trim());
        Assert.Equal("NO", Row(cut, "devbox").QuerySelector("td .mud-chip[data-available]")!.TextContent.Trim());
        Assert.Contains("Not checked for more than 7 days", Row(cut, "debian-13").QuerySelector(".mud-chip[data-available]")!.GetAttribute("title"));
        Assert.Contains("Never checked", Row(cut, "arch-1").QuerySelector(".mud-chip[data-available]")!.GetAttribute("title"));
        // Last check and last update, as relative times.
        Assert.Equal("1 h ago", Row(cut, "fedora-42").QuerySelector("[data-last-check]")!.TextContent.Trim());
        Assert.Equal("never", Row(cut, "fedora-42").QuerySelector("[data-last-update]")!.TextContent.Trim());
        Assert.Equal("never", Row(cut, "arch-1").QuerySelector("[data-last-check]")!.TextContent.Trim());
        Assert.Equal("20 h ago", Row(cut, "devbox").QuerySelector("[data-last-check]")!.TextContent.Trim());
        Assert.Equal("20 h ago", Row(cut, "devbox").QuerySelector("[data-last-update]")!.TextContent.Trim());
    }

    [Theory]
    [InlineData("True", 100, "Yes")] // a YES stays YES however old the check
    [InlineData("true", 1, "Yes")]
    [InlineData("False", 1, "No")]
    [InlineData("False", 24 * 7 - 1, "No")]
    [InlineData("False", 24 * 7 + 1, "Maybe")]
    [InlineData(null, 1, "No")] // checked lately, flag unset: nothing waits
    [InlineData("False", null, "Maybe")] // never checked
    [InlineData(null, null, "Maybe")]
    public void Availability_follows_Qubes_updater(string? updatesAvailable, int? checkedHoursAgo, string expected)
    {
        var now = new DateTime(2026, 11, 20, 12, 0, 0, DateTimeKind.Utc);
        var lastCheck = checkedHoursAgo is { } h ? now.AddHours(-h) : (DateTime?)null;

        Assert.Equal(Enum.Parse<UpdateAvailability>(expected), UpdateRow.AvailabilityOf(updatesAvailable, lastCheck, now, new UpdateOptions().StaleAfter));
    }

    [Fact]
    public void A_check_time_is_read_as_UTC_and_an_unreadable_one_as_none()
    {
        Assert.Equal(new DateTime(2026, 11, 20, 9, 30, 0, DateTimeKind.Utc), UpdateRow.ParseUtc("2026-11-20T09:30:00Z"));
        Assert.Equal(DateTimeKind.Utc, UpdateRow.ParseUtc("2026-11-20T09:30:00Z")!.Value.Kind);
        Assert.Null(UpdateRow.ParseUtc("yesterday"));
        Assert.Null(UpdateRow.ParseUtc(""));
        Assert.Null(UpdateRow.ParseUtc(null));
    }

    [Fact]
    public async Task Only_the_YES_rows_are_preselected()
    {
        await SetCheckedStatesAsync();

        var cut = RenderPage();

        Assert.Equal(["fedora-42"], Selected(cut));
        Assert.True(Row(cut, "fedora-42").QuerySelector("input[type=checkbox]")!.HasAttribute("checked"));
        Assert.False(Row(cut, "debian-13").QuerySelector("input[type=checkbox]")!.HasAttribute("checked"));
        Assert.False(Row(cut, "devbox").QuerySelector("input[type=checkbox]")!.HasAttribute("checked"));
        Assert.Contains("1 selected", cut.Find("#updates-selected-count").TextContent);
        Assert.False(cut.Find("#update-selected").HasAttribute("disabled"));
    }

    [Fact]
    public void With_nothing_waiting_nothing_is_selected_and_Update_selected_is_disabled()
    {
        var cut = RenderPage();

        Assert.Empty(Selected(cut));
        Assert.True(cut.Find("#update-selected").HasAttribute("disabled"));
        Assert.False(cut.Find("#check-updates").HasAttribute("disabled"));
    }

    // ---- the buttons ----

    [Fact]
    public async Task Check_for_updates_with_nothing_selected_checks_every_updateable_qube()
    {
        await SetDistributionsAsync();
        var cut = RenderPage();
        Assert.Empty(Selected(cut));

        await ClickAsync(cut, "#check-updates");

        Assert.Equal([("check-updates", "debian-13"), ("check-updates", "devbox"), ("check-updates", "fedora-42")], await UpdateJobsAsync());
        // Each row shows its job, linked to the task's page.
        cut.WaitForAssertion(() =>
        {
            foreach (var name in new[] { "debian-13", "devbox", "fedora-42" })
            {
                var status = Row(cut, name).QuerySelector("[data-job]");
                Assert.NotNull(status);
                Assert.Equal("check-updates", status.GetAttribute("data-job-kind"));
                Assert.Equal($"/tasks/{status.GetAttribute("data-job")}", status.QuerySelector("a")!.GetAttribute("href"));
            }
        }, Wait);
        Snackbars.WaitForAssertion(() => Assert.Contains("Check for updates: debian-13 (task #", Snackbars.Markup), Wait);
        await CancelUpdateJobsAsync();
    }

    [Fact]
    public async Task Check_for_updates_checks_only_the_selected_qubes()
    {
        await SetDistributionsAsync();
        var cut = RenderPage();

        await TickAsync(cut, "devbox");
        cut.WaitForAssertion(() => Assert.Equal(["devbox"], Selected(cut)), Wait);
        await ClickAsync(cut, "#check-updates");

        Assert.Equal([("check-updates", "devbox")], await UpdateJobsAsync());
        await CancelUpdateJobsAsync();
    }

    [Fact]
    public async Task Update_selected_queues_an_update_for_each_selected_qube()
    {
        await SetCheckedStatesAsync();
        await SetDistributionsAsync();
        var cut = RenderPage();
        Assert.Equal(["fedora-42"], Selected(cut));

        await TickAsync(cut, "devbox");
        cut.WaitForAssertion(() => Assert.Equal(["fedora-42", "devbox"], Selected(cut)), Wait);
        await ClickAsync(cut, "#update-selected");

        Assert.Equal([("update", "devbox"), ("update", "fedora-42")], await UpdateJobsAsync());
        cut.WaitForAssertion(() => Assert.Equal("update", Row(cut, "fedora-42").QuerySelector("[data-job]")?.GetAttribute("data-job-kind")), Wait);
        Assert.Null(Row(cut, "debian-13").QuerySelector("[data-job]"));
        await CancelUpdateJobsAsync();
    }

    [Fact]
    public async Task Going_to_another_page_and_back_keeps_the_ticks_and_the_outcome_of_the_updates_started_here()
    {
        await SetCheckedStatesAsync();
        await SetDistributionsAsync();
        var cut = RenderPage();
        await TickAsync(cut, "devbox");
        cut.WaitForAssertion(() => Assert.Equal(["fedora-42", "devbox"], Selected(cut)), Wait);
        await ClickAsync(cut, "#update-selected");
        // This fixture's templates have no root revisions, so both updates fail at once: an outcome to come back to.
        cut.WaitForAssertion(() => Assert.Contains("0 succeeded, 2 did not", cut.Find("#updates-finished").TextContent), Wait);
        var outcome = cut.Find("#updates-finished").TextContent;

        // Another page, then /updates again in the same tab: a new component on the same circuit.
        await DisposeComponentsAsync();
        var again = RenderPage();

        Assert.Equal(["fedora-42", "devbox"], Selected(again));
        again.WaitForAssertion(() => Assert.Equal(outcome, again.Find("#updates-finished").TextContent), Wait);
    }

    [Fact]
    public async Task Select_all_ticks_every_row_and_then_none()
    {
        var cut = RenderPage();

        await cut.InvokeAsync(() => cut.Find("input#select-all-updates").Change(true));
        cut.WaitForAssertion(() => Assert.Equal(["debian-13", "fedora-42", "devbox"], Selected(cut)), Wait);
        await cut.InvokeAsync(() => cut.Find("input#select-all-updates").Change(false));
        cut.WaitForAssertion(() => Assert.Empty(Selected(cut)), Wait);
    }

    [Fact]
    public async Task A_refused_update_is_shown_as_a_snackbar_with_its_reason_and_the_others_go_ahead()
    {
        await SetCheckedStatesAsync();
        // fedora-42 (YES, preselected) has no os-distribution: no update command is known for it.
        await SetFeaturesAsync("devbox", ("os-distribution", "fedora"));
        var cut = RenderPage();
        await TickAsync(cut, "devbox");
        cut.WaitForAssertion(() => Assert.Equal(["fedora-42", "devbox"], Selected(cut)), Wait);

        await ClickAsync(cut, "#update-selected");

        Snackbars.WaitForAssertion(() => Assert.Contains("No update command is known for fedora-42", Snackbars.Markup), Wait);
        Assert.Equal([("update", "devbox")], await UpdateJobsAsync());
        await CancelUpdateJobsAsync();
    }

    [Fact]
    public async Task A_qube_busy_with_another_job_shows_that_job_and_its_update_is_refused_with_the_holders_number()
    {
        await SetCheckedStatesAsync();
        await SetDistributionsAsync();
        // Another tab's update of fedora-42, queued and holding its lock, as the engine records one (never run here).
        var other = await HoldLockAsync("fedora-42", JobKind.Update);
        var cut = RenderPage();
        var status = Row(cut, "fedora-42").QuerySelector("[data-job]")!;
        Assert.Equal(other.ToString(System.Globalization.CultureInfo.InvariantCulture), status.GetAttribute("data-job"));
        Assert.Equal("queued", status.GetAttribute("data-status"));
        Assert.Equal($"/tasks/{other}", status.QuerySelector("a")!.GetAttribute("href"));

        await ClickAsync(cut, "#update-selected");

        Snackbars.WaitForAssertion(() => Assert.Contains($"job #{other} (Update fedora-42) holds its lock", Snackbars.Markup), Wait);
        Assert.Equal([("update", "fedora-42")], await UpdateJobsAsync());
    }

    private async Task<long> HoldLockAsync(string qube, JobKind kind)
    {
        await using var db = await Contexts.CreateDbContextAsync();
        var job = new Job { Kind = kind.Name, Target = qube, State = JobState.Queued, CreatedUtc = DateTime.UtcNow, Step = "Queued" };
        db.Jobs.Add(job);
        await db.SaveChangesAsync();
        db.Locks.Add(new QubeLock { QubeName = qube, JobId = job.Id, AcquiredUtc = DateTime.UtcNow });
        await db.SaveChangesAsync();
        return job.Id;
    }

    [Fact]
    public void Outside_demo_mode_there_is_no_simulation_notice()
    {
        var cut = RenderPage();

        Assert.Empty(cut.FindAll("#demo-simulated"));
    }
}

/// <summary>The same page in demo mode: the package managers are simulated, and the page says so.</summary>
public sealed class UpdatesPageDemoTests : ConsoleTestContext
{
    public UpdatesPageDemoTests()
    {
        // The console's options are one instance, registered by AddQubesWeb: demo mode is what Guests.Simulated reads.
        var options = (IOptions<QubesWebOptions>)Services.Single(d => d.ServiceType == typeof(IOptions<QubesWebOptions>)).ImplementationInstance!;
        options.Value.Demo = true;
    }

    [Fact]
    public void The_page_says_the_package_managers_are_simulated()
    {
        Assert.True(Services.GetRequiredService<Guests>().Simulated);

        var cut = Render<UpdatesPage>();

        cut.WaitForAssertion(() => Assert.NotEmpty(cut.FindAll("#updates-grid tr[data-qube]")), TimeSpan.FromSeconds(15));
        var notice = cut.Find("#demo-simulated");
        Assert.Equal("Demo: package managers are simulated (libvirt's test driver runs no guest); the revisions they produce are real.",
            System.Text.RegularExpressions.Regex.Replace(notice.TextContent, @"\s+", " ").Trim());
        Assert.Contains("mud-alert-text-info", notice.ClassName);
    }
}

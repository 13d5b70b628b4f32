// The qube page rendered with bUnit over the real monitor, inventory and job engine; the hypervisor is the in-memory
// fake. Every refusal is the inventory's or the job's own rule, shown as text, and leaves the inventory as it was.
using QubesWeb.Services.Jobs;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Web;
using MudBlazor.Extensions;
using QubesWeb.Components.Shared;
using QubesWeb.Services;
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubeDetailPage = QubesWeb.Components.Pages.Qubes.QubeDetail;

namespace QubesWeb.ComponentTests;

public sealed class QubeDetailTests : ConsoleTestContext
{
    private IRenderedComponent<QubeDetailPage> RenderPage(string name)
    {
        RenderProviders();
        var cut = Render<QubeDetailPage>(p => p.Add(x => x.Name, name));
        cut.WaitForAssertion(() => Assert.True(cut.FindAll("#qube-title").Count == 1 || cut.FindAll("#qube-missing").Count == 1), Wait);
        return cut;
    }

    private static string StateShown(IRenderedComponent<QubeDetailPage> cut) =>
        cut.Find("#qube-header [data-state]").GetAttribute("data-state")!;

    private static async Task SetNumberAsync(IRenderedComponent<QubeDetailPage> cut, string id, int value) =>
        await cut.Find($"input#{id}").InputAsync(new ChangeEventArgs { Value = value.ToString() });

    private static Task SelectAsync(IRenderedComponent<QubeDetailPage> cut, string label, string value)
    {
        var select = cut.FindComponents<MudSelect<string>>().Single(s => s.Instance.Label == label);
        return cut.InvokeAsync(() => select.Instance.ValueChanged.InvokeAsync(value));
    }

    private static Task SaveAsync(IRenderedComponent<QubeDetailPage> cut) => cut.Find("#qube-save").ClickAsync(new MouseEventArgs());

    private static string SaveError(IRenderedComponent<QubeDetailPage> cut) => cut.Find("#qube-save-error").TextContent.Trim();

    /// <summary>What the inventory holds of a qube, as one comparable value.</summary>
    private async Task<string> SnapshotAsync(string name)
    {
        var q = await Inventory.GetAsync(name);
        return $"{q.Label.Name}|{q.MemoryMiB}|{q.VCpus}|{q.NetVm?.Name}|{q.Template?.Name}|{q.Notes}|" +
               string.Join(",", q.Features.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => $"{f.Key}={f.Value}"));
    }

    [Fact]
    public void The_page_shows_the_qubes_header_properties_volumes_and_the_template_locked_while_it_runs()
    {
        var cut = RenderPage("work");

        cut.WaitForAssertion(() => Assert.Equal("running", StateShown(cut)), Wait);
        Assert.Equal("work", cut.Find("#qube-title").TextContent.Trim());
        Assert.Equal("AppVM", cut.Find("#qube-class").TextContent.Trim());
        Assert.Equal("label blue", cut.Find("#qube-header .qw-label-dot").GetAttribute("aria-label"));
        Assert.Equal("true", cut.Find("button[role='radio'][aria-label='blue']").GetAttribute("aria-checked"));
        Assert.Equal("2000", cut.Find("input#qube-memory").GetAttribute("value"));
        Assert.Equal("2", cut.Find("input#qube-vcpus").GetAttribute("value"));
        var netvm = cut.FindComponents<MudSelect<string>>().Single(s => s.Instance.Label == "NetVM");
        Assert.Equal("sys-net", netvm.Instance.GetState(x => x.Value));
        var template = cut.FindComponents<MudSelect<string>>().Single(s => s.Instance.Label == "Template");
        Assert.Equal("fedora-42", template.Instance.GetState(x => x.Value));
        Assert.True(template.Instance.Disabled);
        Assert.Contains("work is running: its template can change only while it is halted.", cut.Markup);
        Assert.Contains("work is running: changes to memory and VCPUs apply at its next start.", cut.Find("#qube-next-start").TextContent);

        // Volumes: the AppVM's root is its template's snapshot; private and volatile with size and usage.
        Assert.Contains("a snapshot of fedora-42's current revision, made at each start", cut.Find("tr[data-volume='root'] [data-role]").TextContent);
        var priv = cut.Find("tr[data-volume='private']");
        Assert.Equal("no file", priv.QuerySelector("[data-path]")!.TextContent.Trim());
        Assert.Equal([Format.Bytes(2L << 30), Format.Bytes(6L << 20), "not yet"], priv.QuerySelectorAll("td").Skip(1).Select(td => td.TextContent.Trim()));
        Assert.Contains(Format.Bytes(10L << 30), cut.Find("tr[data-volume='volatile']").TextContent);
        Assert.Contains("No jobs on work yet.", cut.Find("#qube-jobs").TextContent);
        Assert.NotNull(cut.Find("button[aria-label='Kill work']"));
        Assert.NotNull(cut.Find("button[aria-label='Remove work']"));
    }

    [Fact]
    public void The_console_and_screen_buttons_lead_to_the_qubes_console_page_and_are_enabled_only_while_it_runs()
    {
        var cut = RenderPage("vault");
        foreach (var button in new[] { "#qube-console", "#qube-screen" })
        {
            Assert.True(cut.Find(button).HasAttribute("disabled"));
            Assert.Null(cut.Find(button).GetAttribute("href"));
        }

        Hypervisor.SetState("vault", RunState.Running, DomainChangeKind.Started);
        cut.WaitForAssertion(() =>
        {
            Assert.False(cut.Find("#qube-console").HasAttribute("disabled"));
            Assert.Equal("/qubes/vault/console", cut.Find("#qube-console").GetAttribute("href"));
            Assert.False(cut.Find("#qube-screen").HasAttribute("disabled"));
            Assert.Equal("/qubes/vault/console?view=screen", cut.Find("#qube-screen").GetAttribute("href"));
        }, Wait);
    }

    [Fact]
    public async Task The_qubes_jobs_are_listed_each_linking_to_its_task_page()
    {
        var cut = RenderPage("vault");

        var job = await SucceedsAsync(Services, JobKind.Start, "vault", timeout: Wait);

        cut.WaitForAssertion(() =>
        {
            var row = cut.Find($"#qube-jobs tr[data-job='{job.Id}']");
            Assert.Equal($"/tasks/{job.Id}", row.QuerySelector("a")!.GetAttribute("href"));
            Assert.Contains("Start vault", row.TextContent);
            Assert.Equal("succeeded", row.QuerySelector("[data-job-state]")!.GetAttribute("data-job-state"));
            Assert.Equal("running", StateShown(cut));
        }, Wait);
    }

    [Fact]
    public async Task Memory_0_is_refused_with_the_memory_rule_and_the_inventory_is_unchanged()
    {
        var cut = RenderPage("work");
        var before = await SnapshotAsync("work");

        await SetNumberAsync(cut, "qube-memory", 0);
        // Said as the user types, before any save (the field validates itself with the rule).
        cut.WaitForAssertion(() => Assert.Contains("Memory must be between 128 and 1048576 MiB; 0 was given.", cut.Find("#qube-properties").TextContent), Wait);
        Assert.Empty(cut.FindAll("#qube-save-error"));
        await cut.Find("button[role='radio'][aria-label='red']").ClickAsync(new MouseEventArgs());
        await SaveAsync(cut);

        cut.WaitForAssertion(() => Assert.Equal("Memory must be between 128 and 1048576 MiB; 0 was given.", SaveError(cut)), Wait);
        Assert.Equal(before, await SnapshotAsync("work"));
        // The form keeps what the user typed, so it can be corrected.
        Assert.Equal("0", cut.Find("input#qube-memory").GetAttribute("value"));
    }

    [Fact]
    public async Task A_netvm_that_does_not_provide_network_is_refused_with_the_rule_and_nothing_changes()
    {
        var cut = RenderPage("vault");
        var before = await SnapshotAsync("vault");
        await SelectAsync(cut, "NetVM", "sys-net");
        await cut.Find("button[role='radio'][aria-label='green']").ClickAsync(new MouseEventArgs());
        // Meanwhile sys-net stops providing network (changed elsewhere): the inventory, not the form, decides.
        await using (var db = await Contexts.CreateDbContextAsync())
            await db.Qubes.Where(q => q.Name == "sys-net").ExecuteUpdateAsync(s => s.SetProperty(q => q.ProvidesNetwork, false));

        await SaveAsync(cut);

        cut.WaitForAssertion(() => Assert.Equal(
            "'sys-net' does not provide network; choose a qube with provides_network set, or none.", SaveError(cut)), Wait);
        Assert.Equal(before, await SnapshotAsync("vault"));
    }

    [Fact]
    public async Task A_template_change_when_the_qube_started_meanwhile_is_refused_with_the_rule_and_nothing_changes()
    {
        var cut = RenderPage("vault");
        var before = await SnapshotAsync("vault");
        var template = cut.FindComponents<MudSelect<string>>().Single(s => s.Instance.Label == "Template");
        Assert.False(template.Instance.Disabled);
        await SelectAsync(cut, "Template", "fedora-42");
        await SetNumberAsync(cut, "qube-memory", 1000);

        Hypervisor.SetState("vault", RunState.Running, DomainChangeKind.Started);
        cut.WaitForAssertion(() =>
        {
            Assert.Equal("running", StateShown(cut));
            Assert.True(template.Instance.Disabled);
            Assert.Contains("vault is running: its template can change only while it is halted.", cut.Markup);
        }, Wait);
        await SaveAsync(cut);

        cut.WaitForAssertion(() => Assert.Equal(
            "'vault' is running; its template can change only while it is halted. Shut it down first.", SaveError(cut)), Wait);
        Assert.Equal(before, await SnapshotAsync("vault"));
    }

    [Fact]
    public async Task A_valid_edit_of_a_halted_qube_is_saved_and_its_domain_redefined_to_match()
    {
        var cut = RenderPage("vault");
        Assert.True(cut.Find("#qube-save").HasAttribute("disabled"));

        await cut.Find("button[role='radio'][aria-label='purple']").ClickAsync(new MouseEventArgs());
        await SetNumberAsync(cut, "qube-memory", 800);
        await SetNumberAsync(cut, "qube-vcpus", 3);
        await SelectAsync(cut, "NetVM", "sys-net");
        await SelectAsync(cut, "Template", "fedora-42");
        await cut.Find("textarea#qube-notes").InputAsync(new ChangeEventArgs { Value = "Keys live here.\nNo network before today." });
        await cut.Find("input#feature-new-key").InputAsync(new ChangeEventArgs { Value = "bad key" });
        cut.WaitForAssertion(() =>
        {
            Assert.Contains("A feature key may contain only letters, digits, '_', '.' and '-'; not spaces.", cut.Markup);
            Assert.True(cut.Find("#feature-add").HasAttribute("disabled"));
        }, Wait);
        await cut.Find("input#feature-new-key").InputAsync(new ChangeEventArgs { Value = "skip-update" });
        await cut.Find("input#feature-new-value").InputAsync(new ChangeEventArgs { Value = "1" });
        await cut.Find("#feature-add").ClickAsync(new MouseEventArgs());
        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("tr[data-feature='skip-update']")), Wait);
        Assert.False(cut.Find("#qube-save").HasAttribute("disabled"));

        await SaveAsync(cut);

        Snackbars.WaitForAssertion(() => Assert.Contains("Saved vault.", Snackbars.Markup), Wait);
        Assert.Empty(cut.FindAll("#qube-save-error"));
        var vault = await Inventory.GetAsync("vault");
        Assert.Equal("purple", vault.Label.Name);
        Assert.Equal(800, vault.MemoryMiB);
        Assert.Equal(3, vault.VCpus);
        Assert.Equal("sys-net", vault.NetVm?.Name);
        Assert.Equal("fedora-42", vault.Template?.Name);
        Assert.Equal("Keys live here.\nNo network before today.", vault.Notes);
        Assert.Equal("1", vault.Feature("skip-update"));
        // libvirt's definition follows the inventory: the new label and template are in the domain's metadata.
        Assert.Equal(new QubeMetadata("AppVM", "purple", "fedora-42"), Hypervisor.GetMetadata("vault"));
        cut.WaitForAssertion(() => Assert.True(cut.Find("#qube-save").HasAttribute("disabled")), Wait);
    }

    [Fact]
    public async Task Features_can_be_edited_and_removed_and_only_those_changes_are_saved()
    {
        await Inventory.UpdateAsync("vault", new QubeChanges(Features: new Dictionary<string, string?> { ["a.b"] = "1", ["gone"] = "x" }));
        var cut = RenderPage("vault");
        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("tr[data-feature='gone']")), Wait);
        // Set by someone else after the page loaded: a save that does not touch it keeps it.
        await Inventory.UpdateAsync("vault", new QubeChanges(Features: new Dictionary<string, string?> { ["last-updates-check"] = "2026-01-01" }));

        await cut.Find("tr[data-feature='a.b'] input").InputAsync(new ChangeEventArgs { Value = "2" });
        await cut.Find("button[aria-label='Remove feature gone']").ClickAsync(new MouseEventArgs());
        await SaveAsync(cut);

        Snackbars.WaitForAssertion(() => Assert.Contains("Saved vault.", Snackbars.Markup), Wait);
        var vault = await Inventory.GetAsync("vault");
        Assert.Equal(["a.b=2", "last-updates-check=2026-01-01"],
            vault.Features.OrderBy(f => f.Key, StringComparer.Ordinal).Select(f => $"{f.Key}={f.Value}"));
    }

    [Fact]
    public async Task A_memory_change_on_a_running_qube_is_saved_and_said_to_apply_at_its_next_start()
    {
        var cut = RenderPage("work");
        cut.WaitForAssertion(() => Assert.Equal("running", StateShown(cut)), Wait);

        await SetNumberAsync(cut, "qube-memory", 3000);
        await SaveAsync(cut);

        Snackbars.WaitForAssertion(() => Assert.Contains("Saved work. Memory and VCPUs apply at work's next start.", Snackbars.Markup), Wait);
        Assert.Equal(3000, (await Inventory.GetAsync("work")).MemoryMiB);
        Assert.Equal(RunState.Running, Hypervisor.GetDomain("work")!.State);
    }

    [Fact]
    public void Dom0_is_shown_read_only_without_form_actions_or_remove()
    {
        var cut = RenderPage("dom0");

        Assert.Contains("dom0 is the admin qube (AdminVM): the console shows it read-only.", cut.Find("#qube-readonly").TextContent);
        Assert.Contains("AdminVM", cut.Find("#qube-readonly-properties").TextContent);
        Assert.Empty(cut.FindAll("#qube-save"));
        Assert.Empty(cut.FindAll("#qube-properties input"));
        Assert.Empty(cut.FindAll("#qube-properties textarea"));
        Assert.Empty(cut.FindAll("#qube-actions"));
        Assert.Empty(cut.FindAll("#qube-remove"));
    }

    [Fact]
    public void An_unknown_name_says_there_is_no_such_qube_and_links_back_to_the_list()
    {
        var cut = RenderPage("nope");

        Assert.Equal("There is no qube named 'nope'.", cut.Find("#qube-missing").TextContent.Trim());
        Assert.Equal("/qubes", cut.Find("#back-to-qubes").GetAttribute("href"));
    }

    [Fact]
    public async Task Remove_asks_to_type_the_name_then_removes_the_qube_and_returns_to_the_list()
    {
        var cut = RenderPage("vault");
        await cut.Find("#qube-remove").ClickAsync(new MouseEventArgs());

        var provider = Dialogs;
        provider.WaitForAssertion(() => Assert.NotNull(provider.Find("#remove-confirm-name")), Wait);
        Assert.True(provider.Find("#remove-confirm").HasAttribute("disabled"));
        await provider.Find("input#remove-confirm-name").InputAsync(new ChangeEventArgs { Value = "vaul" });
        provider.WaitForAssertion(() => Assert.True(provider.Find("#remove-confirm").HasAttribute("disabled")), Wait);
        Assert.NotNull(await Inventory.FindAsync("vault"));

        await provider.Find("input#remove-confirm-name").InputAsync(new ChangeEventArgs { Value = "vault" });
        provider.WaitForAssertion(() => Assert.False(provider.Find("#remove-confirm").HasAttribute("disabled")), Wait);
        await provider.Find("#remove-confirm").ClickAsync(new MouseEventArgs());

        var nav = Services.GetRequiredService<NavigationManager>();
        cut.WaitForAssertion(() => Assert.EndsWith("/qubes", nav.Uri), Wait);
        Assert.Null(await Inventory.FindAsync("vault"));
        Assert.Null(Hypervisor.GetDomain("vault"));
        var job = Assert.Single(await Jobs.RecentAsync(10));
        Assert.Equal(("remove", "vault", JobState.Succeeded), (job.Kind, job.Target, job.State));
    }

    [Fact]
    public async Task Remove_of_a_template_with_dependents_is_refused_naming_them_and_queues_nothing()
    {
        var cut = RenderPage("fedora-42");

        await cut.Find("#qube-remove").ClickAsync(new MouseEventArgs());

        var provider = Dialogs;
        provider.WaitForAssertion(() => Assert.Equal(
            "'fedora-42' is the template of 3 qube(s): default-dvm, sys-net, work. Switch them to another template or remove them first.",
            provider.Find("#remove-error").TextContent.Trim()), Wait);
        Assert.True(provider.Find("#remove-confirm").HasAttribute("disabled"));
        Assert.Empty(await Jobs.RecentAsync(10));
        Assert.NotNull(await Inventory.FindAsync("fedora-42"));
    }

    [Fact]
    public async Task Remove_of_a_running_qube_is_refused_saying_to_shut_it_down_first()
    {
        var cut = RenderPage("work");

        await cut.Find("#qube-remove").ClickAsync(new MouseEventArgs());

        var provider = Dialogs;
        provider.WaitForAssertion(() => Assert.Equal("'work' is running; shut it down first.", provider.Find("#remove-error").TextContent.Trim()), Wait);
        Assert.True(provider.Find("#remove-confirm").HasAttribute("disabled"));
        Assert.Empty(await Jobs.RecentAsync(10));
    }

    [Fact]
    public async Task Kill_asks_for_confirmation_before_queueing_a_kill_job()
    {
        var cut = RenderPage("work");

        // The click's handler waits for the answer: it completes only once the message box is answered.
        var clicked = cut.Find("button[aria-label='Kill work']").ClickAsync(new MouseEventArgs());

        var provider = Dialogs;
        provider.WaitForAssertion(() => Assert.Contains("Killing stops work at once", provider.Markup), Wait);
        Assert.Empty(await Jobs.RecentAsync(10));
        await provider.FindAll("button").First(b => b.TextContent.Trim() == "Kill").ClickAsync(new MouseEventArgs());
        await clicked.WaitAsync(Wait);

        cut.WaitForAssertion(() => Assert.Equal("halted", StateShown(cut)), Wait);
        var job = Assert.Single(await Jobs.RecentAsync(10));
        Assert.Equal("kill", job.Kind);
    }
}

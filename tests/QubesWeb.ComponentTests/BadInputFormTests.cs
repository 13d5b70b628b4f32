// The console's forms and addresses fed the hostile and oversized inputs of shared/notes/security.md, rendered with
// bUnit over the real inventory and job engine: the user sees each refusal as a sentence, nothing is written (no row,
// no job, no domain), and hostile text is shown as text: no element is ever added to the page.
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Web;
using QubesWeb.Components.Pages.Create;
using QubesWeb.Components.Pages.Qubes;
using QubesWeb.Data.Qubes;
using QubeDetailPage = QubesWeb.Components.Pages.Qubes.QubeDetail;
using TasksPage = QubesWeb.Components.Pages.Tasks.Tasks;
using TemplateDetailPage = QubesWeb.Components.Pages.Templates.TemplateDetail;

namespace QubesWeb.ComponentTests;

public sealed class BadInputFormTests : ConsoleTestContext
{
    private const string Markup = "<img src=x onerror=alert(1)>\"><svg onload=alert(1)></script><script>alert(2)</script>]]><!ENTITY x>";

    /// <summary>Jobs, qubes and libvirt domains, as one comparable value: a refusal leaves it as it was.</summary>
    private async Task<string> EstateAsync()
    {
        await using var db = await Contexts.CreateDbContextAsync();
        var qubes = await db.Qubes.OrderBy(q => q.Name).Select(q => q.Name + ":" + q.Notes + ":" + q.MemoryMiB + ":" + q.VCpus).ToListAsync();
        var features = await db.Features.OrderBy(f => f.Key).Select(f => f.Key + "=" + f.Value).ToListAsync();
        var domains = Hypervisor.ListDomains().Select(d => d.Name).Order(StringComparer.Ordinal);
        return $"{await db.Jobs.CountAsync()}|{string.Join(",", qubes)}|{string.Join(",", features)}|{string.Join(",", domains)}";
    }

    /// <summary>No element that hostile text could have added: none of these is part of any page of the console.</summary>
    private static void NoInjectedElement<T>(IRenderedComponent<T> cut) where T : IComponent
    {
        Assert.Empty(cut.FindAll("script"));
        Assert.Empty(cut.FindAll("img"));
        Assert.Empty(cut.FindAll("[onerror], [onload]"));
    }

    private static readonly (string Name, string Phrase)[] HostileNames =
    [
        // name, a phrase the user reads under the field
        ("../x", "must start with a letter"),
        ("%2e%2e%2f", "must start with a letter"),
        ("a/b", "'/'"),
        ("$(id)", "'$'"),
        ("--helpVM", "must start with a letter"),
        ("test-###", "'#'"),
        ("nul\0x", "NUL"),
        ("evil\u202Etxt", "U+202E"),
        ("zero\u200Bwidth", "U+200B"),
        ("<script>alert(1)</script>", "'<'"),
        (new string('a', 4096), "at most 31 characters; this one has 4096"),
        ("Domain-0", "is reserved"),
        ("x-dm", "must not end in '-dm'"),
        ("sys-net", "A qube named 'sys-net' already exists."),
    ];

    private async Task<IRenderedComponent<MudDialogProvider>> OpenAsync(string dialog)
    {
        RenderProviders(snackbars: false);
        var provider = Dialogs;
        var service = Services.GetRequiredService<IDialogService>();
        await provider.InvokeAsync(() => dialog == "new"
            ? service.ShowAsync<NewQubeDialog>("New qube")
            : service.ShowAsync<CloneDialog>("Clone devbox", new DialogParameters<CloneDialog>
                { { d => d.Source, "devbox" }, { d => d.SourceClass, QubeClass.StandaloneVM } }));
        provider.WaitForElement(dialog == "new" ? "input#new-qube-name" : "input#clone-name", Wait);
        return provider;
    }

    public static TheoryData<string, string, string> HostileNamesInDialogs
    {
        get
        {
            var data = new TheoryData<string, string, string>();
            foreach (var dialog in new[] { "new", "clone" })
                foreach (var (name, phrase) in HostileNames)
                    data.Add(dialog, name, phrase);
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(HostileNamesInDialogs))]
    public async Task The_new_qube_and_clone_dialogs_say_why_a_hostile_name_is_refused_and_create_nothing(string dialog, string name, string phrase)
    {
        var (field, button) = dialog == "new" ? ("input#new-qube-name", "#new-qube-create") : ("input#clone-name", "#clone-confirm");
        var before = await EstateAsync();
        var provider = await OpenAsync(dialog);

        await provider.InvokeAsync(() => provider.Find(field).Input(name));

        provider.WaitForAssertion(() =>
        {
            var problems = provider.FindAll(".qw-name-problem").Select(e => e.TextContent).ToList();
            Assert.Contains(problems, p => p.Contains(phrase));
            Assert.True(provider.Find(button).HasAttribute("disabled"), $"{dialog}: the button is enabled");
        }, Wait);
        NoInjectedElement(provider);
        Assert.Equal(before, await EstateAsync());
    }

    [Fact]
    public async Task A_name_taken_by_another_tab_after_the_dialog_opened_is_refused_by_the_job_and_shown_in_the_dialog()
    {
        var provider = await OpenAsync("new");
        // The other tab wins: its qube exists before this one submits the same name.
        await Inventory.CreateAsync(new NewQube("late", QubeClass.AppVM, "blue", "fedora-42"));
        // Settled as the other tab's creation leaves it, its domain defined: otherwise a reconciliation queued by
        // anything else may define it after the snapshot below, and the estate would seem changed by this tab.
        await Estate.ReconcileAsync();
        var before = await EstateAsync();

        await provider.InvokeAsync(() => provider.Find("input#new-qube-name").Input("late"));
        await (await ClickFreshAsync(provider, () => provider.Find("#new-qube-create")));

        provider.WaitForAssertion(() => Assert.Equal("A qube named 'late' already exists; choose another name.", provider.Find("#new-qube-error").TextContent.Trim()), Wait);
        Assert.Equal(before, await EstateAsync());
    }

    public static TheoryData<string, string, string> BadSaves => new()
    {
        // field, what is typed, a phrase of the refusal shown beside Save
        { "notes", new string('n', QubeRules.MaxNotesLength + 1), $"Notes have at most {QubeRules.MaxNotesLength} characters; these have {QubeRules.MaxNotesLength + 1}." },
        { "notes", "invoice\u202Efdp.exe", "U+202E (right-to-left override)" },
        { "notes", "a\0b", "Notes may not contain control characters." },
        { "memory", "0", "Memory must be between" },
        { "memory", "-400", "Memory must be between" },
        { "memory", "2000000", "Memory must be between" },
        { "vcpus", "0", "VCPUs must be between" },
        { "vcpus", "999", "VCPUs must be between" },
        { "feature", "note=" + new string('v', QubeFeatureRules.MaxValueLength + 1), $"A feature value has at most {QubeFeatureRules.MaxValueLength} characters" },
        { "feature", "note=a\u202Eb", "invisible formatting characters" },
        { "feature", "qubesweb-update-command=rm -rf /", "must start with the program's absolute path" },
        { "feature", "qubesweb-update-command=/usr/bin/dnf -y upgrade; reboot", "without a shell, so ';'" },
    };

    [Theory]
    [MemberData(nameof(BadSaves))]
    public async Task The_qube_page_refuses_an_oversized_or_hostile_save_with_a_message_and_writes_nothing(string field, string typed, string phrase)
    {
        RenderProviders(dialogs: false);
        var cut = Render<QubeDetailPage>(p => p.Add(x => x.Name, "devbox"));
        cut.WaitForElement("#qube-save", Wait);
        var before = await EstateAsync();

        switch (field)
        {
            case "notes": await cut.Find("textarea#qube-notes").InputAsync(new ChangeEventArgs { Value = typed }); break;
            case "memory": await cut.Find("input#qube-memory").InputAsync(new ChangeEventArgs { Value = typed }); break;
            case "vcpus": await cut.Find("input#qube-vcpus").InputAsync(new ChangeEventArgs { Value = typed }); break;
            default:
                var (key, value) = (typed[..typed.IndexOf('=')], typed[(typed.IndexOf('=') + 1)..]);
                await cut.Find("input#feature-new-key").InputAsync(new ChangeEventArgs { Value = key });
                await cut.Find("input#feature-new-value").InputAsync(new ChangeEventArgs { Value = value });
                await (await ClickFreshAsync(cut, () => cut.Find("#feature-add")));
                cut.WaitForElement($"tr[data-feature='{key}']", Wait);
                break;
        }
        cut.WaitForAssertion(() => Assert.False(cut.Find("#qube-save").HasAttribute("disabled")), Wait);
        await (await ClickFreshAsync(cut, () => cut.Find("#qube-save")));

        cut.WaitForAssertion(() => Assert.Contains(phrase, cut.Find("#qube-save-error").TextContent), Wait);
        Assert.Equal(before, await EstateAsync());
    }

    [Fact]
    public async Task Markup_in_notes_and_features_is_shown_as_text_on_the_qube_page_and_the_dom0_page()
    {
        await Inventory.UpdateAsync("vault", new QubeChanges(Notes: Markup, Features: new Dictionary<string, string?> { ["note"] = Markup }));
        // dom0 is read-only in the console; its features are written by the console itself (e.g. by the updater).
        await using (var db = await Contexts.CreateDbContextAsync())
        {
            var dom0 = await db.Qubes.Include(q => q.Features).SingleAsync(q => q.Class == QubeClass.AdminVM);
            dom0.Notes = Markup;
            dom0.Features.Add(new QubeFeature { Key = "note", Value = Markup });
            await db.SaveChangesAsync();
        }
        RenderProviders(dialogs: false);

        var vault = Render<QubeDetailPage>(p => p.Add(x => x.Name, "vault"));
        vault.WaitForElement("textarea#qube-notes", Wait);
        Assert.Equal(Markup, vault.Find("textarea#qube-notes").GetAttribute("value") ?? vault.Find("textarea#qube-notes").TextContent);
        NoInjectedElement(vault);

        var dom0Page = Render<QubeDetailPage>(p => p.Add(x => x.Name, "dom0"));
        dom0Page.WaitForElement("#qube-readonly-properties", Wait);
        Assert.Contains(Markup, dom0Page.Find("#qube-readonly-properties").TextContent);
        NoInjectedElement(dom0Page);
    }

    public static TheoryData<string> HostileRouteNames => new()
    {
        "../x", "..%2Fx", "%2e%2e%2f", "a/b", "nul\0x", "evil\u202Etxt", new string('a', 4096), "<script>alert(1)</script>", "\"><svg onload=alert(1)>",
    };

    [Theory]
    [MemberData(nameof(HostileRouteNames))]
    public async Task A_hostile_name_in_the_address_of_a_qube_or_template_page_shows_no_such_qube_as_text(string name)
    {
        var before = await EstateAsync();
        RenderProviders(dialogs: false);

        var qube = Render<QubeDetailPage>(p => p.Add(x => x.Name, name));
        var template = Render<TemplateDetailPage>(p => p.Add(x => x.Name, name));

        var expected = $"There is no qube named '{QubesWeb.Data.Qubes.QubeRules.Shown(name)}'.";
        qube.WaitForAssertion(() => Assert.Contains(expected, qube.Find("#qube-missing").TextContent), Wait);
        template.WaitForAssertion(() => Assert.Contains(expected, template.Find("#not-a-template").TextContent), Wait);
        // Shown cut short, without control or invisible characters.
        Assert.True(expected.Length < 80);
        Assert.DoesNotContain('\0', expected);
        Assert.DoesNotContain('\u202E', expected);
        Assert.Empty(qube.FindAll("#qube-save"));
        NoInjectedElement(qube);
        NoInjectedElement(template);
        Assert.Equal(before, await EstateAsync());
    }

    [Fact]
    public async Task Hostile_filters_in_the_tasks_address_filter_nothing_in_and_show_as_text()
    {
        var before = await EstateAsync();
        Nav.NavigateTo("tasks?qube=" + Uri.EscapeDataString(Markup) + "&state=" + Uri.EscapeDataString("<img src=x onerror=alert(1)>") + "&state=" + new string('s', 4096));

        var cut = Render<TasksPage>();

        cut.WaitForElement("#tasks-table", Wait);
        Assert.Empty(cut.FindAll("#tasks-table tbody tr.qw-job-row"));
        NoInjectedElement(cut);
        Assert.Equal(before, await EstateAsync());
    }

    [Fact]
    public async Task A_hostile_source_and_purpose_in_the_standalone_wizards_address_are_said_as_text_and_add_no_element()
    {
        var before = await EstateAsync();
        RenderProviders(dialogs: false, snackbars: false);
        Nav.NavigateTo("create/standalone?source=" + Uri.EscapeDataString("../" + Markup) + "&purpose=" + Uri.EscapeDataString(Markup));

        var cut = Render<StandaloneWizard>();

        cut.WaitForElement("#purpose-development", Wait);
        Assert.Empty(cut.FindAll("[role='radio'][aria-checked='true']"));
        await cut.InvokeAsync(() => cut.Find("#purpose-other").Click());
        await cut.InvokeAsync(() => cut.Find("#wizard-next").Click());
        cut.WaitForAssertion(() => Assert.StartsWith($"'{QubesWeb.Data.Qubes.QubeRules.Shown("../" + Markup)}' is not a template of this console",
            cut.Find("#source-notice").TextContent.Trim()), Wait);
        NoInjectedElement(cut);
        Assert.Equal(before, await EstateAsync());
    }

    [Theory]
    [InlineData("invoice\u202Efdp.exe", "U+202E (right-to-left override) at character 8")]
    [InlineData("wo\u200Brk", "U+200B (zero width space)")]
    [InlineData("a\0b", "Notes may not contain control characters.")]
    public async Task The_standalone_wizard_says_why_notes_are_refused_before_review_and_goes_no_further(string notes, string phrase)
    {
        var before = await EstateAsync();
        RenderProviders(dialogs: false, snackbars: false);
        Nav.NavigateTo("create/standalone");
        var cut = Render<StandaloneWizard>();
        cut.WaitForElement("#purpose-development", Wait);
        await cut.InvokeAsync(() => cut.Find("#purpose-other").Click());
        await cut.InvokeAsync(() => cut.Find("#wizard-next").Click());
        cut.WaitForElement("#source-empty", Wait);
        await cut.InvokeAsync(() => cut.Find("#source-empty").Click());
        cut.WaitForAssertion(() => Assert.False(cut.Find("#wizard-next").HasAttribute("disabled")), Wait);
        await cut.InvokeAsync(() => cut.Find("#wizard-next").Click());
        cut.WaitForElement("input#wizard-name", Wait);
        await cut.InvokeAsync(() => cut.Find("input#wizard-name").Input("fine-name"));

        await cut.InvokeAsync(() => cut.Find("textarea#wizard-notes").Input(notes));

        cut.WaitForAssertion(() =>
        {
            Assert.Contains(phrase, cut.Markup);
            Assert.True(cut.Find("#wizard-next").HasAttribute("disabled"));
        }, Wait);
        Assert.Equal(before, await EstateAsync());
    }
}

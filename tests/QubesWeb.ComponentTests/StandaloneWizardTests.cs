// The standalone wizard (/create/standalone) rendered with bUnit over the real inventory, job engine and clone job;
// the hypervisor is the in-memory fake. The seed's fedora-42 gets a real root revision (a qcow2 made by qemu-img in the
// test's own pool), so the clone job's plan and copy are real; debian-13 has no root and cannot be copied.
//
// Two templates made for single tests stand for what a small test cannot make for real: "huge" and "slow" are qcow2
// images on a sparse raw data file (data_file_raw=on), which qemu-img counts as fully allocated. "huge" needs more than
// the pool's free space (the review must refuse it) and "slow" takes seconds to copy (long enough to cancel), while
// neither takes more than a few MiB of real disk.
using System.Globalization;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.Options;
using QubesWeb.Components.Pages.Create;
using QubesWeb.Components.Shared;
using QubesWeb.Services;
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hosting;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Hypervisor.Storage;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Storage;

namespace QubesWeb.ComponentTests;

public sealed class StandaloneWizardTests : ConsoleTestContext
{
    private static new readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private const long GiB = 1L << 30;

    private CloneQubeJob Clones => Services.GetRequiredService<CloneQubeJob>();

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        // The firewall a preset picks as netvm (Qubes' default netvm), behind sys-net.
        await Inventory.CreateAsync(new NewQube("sys-firewall", QubeClass.AppVM, "green", "fedora-42", "sys-net", ProvidesNetwork: true));
        await GiveFedoraARealRootAsync();
    }

    /// <summary>fedora-42's root as a template's is: revision 1 committed, a 10 GiB qcow2 with 4 MiB of data.</summary>
    private async Task GiveFedoraARealRootAsync()
    {
        var dir = Directory.CreateDirectory(Path.Combine(PoolDir, "fedora-42")).FullName;
        var path = Path.Combine(dir, RootFiles.Revision(1));
        await QemuImg.CreateAsync(path, 10 * GiB);
        await QemuImg.WritePatternAsync(path, 0x51, 0, 4L << 20);
        var info = await QemuImg.InfoAsync(path);
        await using var db = await Contexts.CreateDbContextAsync();
        var root = await RootVolumeAsync(db, "fedora-42");
        root.Path = Path.Combine(dir, RootFiles.Dirty);
        root.VirtualSizeBytes = info.VirtualSizeBytes;
        root.CurrentRevision = 1;
        root.Revisions.Add(new RootRevision { Number = 1, Path = path, Reason = "Installed", SizeBytes = info.ActualSizeBytes, CreatedUtc = DateTime.UtcNow });
        await db.SaveChangesAsync();
    }

    /// <summary>A template whose root qemu-img counts as <paramref name="size"/> of data, on a sparse raw data file.</summary>
    private async Task AddTemplateOnSparseDataAsync(string name, long size)
    {
        var dir = Directory.CreateDirectory(Path.Combine(PoolDir, name)).FullName;
        var path = Path.Combine(dir, RootFiles.Revision(1));
        await ProcessRunner.RunCheckedAsync(QemuImg.QemuImgPath,
        [
            "create", "-q", "-f", "qcow2", "-o",
            $"data_file={Path.Combine(dir, "data.raw")},data_file_raw=on,preallocation=metadata,cluster_size=2M",
            "--", path, size.ToString(CultureInfo.InvariantCulture),
        ]);
        var info = await QemuImg.InfoAsync(path);
        await Inventory.CreateAsync(new NewQube(name, QubeClass.TemplateVM, "black", Volumes:
        [
            new NewVolume(VolumeKind.Root, Path.Combine(dir, RootFiles.Dirty), info.VirtualSizeBytes, info.ActualSizeBytes,
                new NewRevision(path, "Installed", info.ActualSizeBytes)),
        ]));
    }

    // ---- driving the wizard

    private IRenderedComponent<StandaloneWizard> Open(string url = "create/standalone")
    {
        RenderProviders(dialogs: false, snackbars: false);
        Nav.NavigateTo(url);
        var cut = Render<StandaloneWizard>();
        cut.WaitForElement("#purpose-development", Wait);
        return cut;
    }

    /// <summary>Finds and clicks in one go on the renderer's thread, so a render in between cannot replace the handler.</summary>
    private static void Click(IRenderedComponent<StandaloneWizard> cut, string selector) =>
        cut.InvokeAsync(() => cut.Find(selector).Click()).GetAwaiter().GetResult();

    private static void Input(IRenderedComponent<StandaloneWizard> cut, string selector, string value) =>
        cut.InvokeAsync(() => cut.Find(selector).Input(value)).GetAwaiter().GetResult();

    private static void Change(IRenderedComponent<StandaloneWizard> cut, string selector, object value) =>
        cut.InvokeAsync(() => cut.Find(selector).Change(value)).GetAwaiter().GetResult();

    private static string StepOf(IRenderedComponent<StandaloneWizard> cut) => cut.Find("#standalone-wizard").GetAttribute("data-step")!;

    private static bool IsDisabled(IRenderedComponent<StandaloneWizard> cut, string selector) => cut.Find(selector).HasAttribute("disabled");

    private static void Next(IRenderedComponent<StandaloneWizard> cut, string to)
    {
        cut.WaitForAssertion(() => Assert.False(IsDisabled(cut, "#wizard-next")), Wait);
        Click(cut, "#wizard-next");
        cut.WaitForAssertion(() => Assert.Equal(to, StepOf(cut)), Wait);
    }

    private static void Back(IRenderedComponent<StandaloneWizard> cut, string to)
    {
        Click(cut, "#wizard-back");
        cut.WaitForAssertion(() => Assert.Equal(to, StepOf(cut)), Wait);
    }

    private static void ToIdentity(IRenderedComponent<StandaloneWizard> cut, string purpose, string source)
    {
        Click(cut, $"#purpose-{purpose}");
        Next(cut, "source");
        Click(cut, $"#source-{source}");
        Next(cut, "identity");
    }

    private static void ToResources(IRenderedComponent<StandaloneWizard> cut, string purpose, string source, string name)
    {
        ToIdentity(cut, purpose, source);
        Input(cut, "input#wizard-name", name);
        Next(cut, "resources");
    }

    private static void ToReview(IRenderedComponent<StandaloneWizard> cut, string purpose, string source, string name)
    {
        ToResources(cut, purpose, source, name);
        Next(cut, "review");
        cut.WaitForElement("#review-space-text", Wait);
    }

    private static List<string> NameProblems(IRenderedComponent<StandaloneWizard> cut) =>
        cut.FindAll(".qw-name-problem").Select(e => e.TextContent.Trim()).ToList();

    private static string ValueOf(IRenderedComponent<StandaloneWizard> cut, string selector) => cut.Find(selector).GetAttribute("value") ?? "";

    private static string Text(IRenderedComponent<StandaloneWizard> cut, string selector) => cut.Find(selector).TextContent.Trim();

    // ---- steps and their validation

    [Fact]
    public void Next_waits_for_a_purpose_and_a_source_and_a_template_that_cannot_be_copied_says_why()
    {
        var cut = Open();
        Assert.Equal("purpose", StepOf(cut));
        Assert.True(IsDisabled(cut, "#wizard-next"));
        Assert.Equal("Choose what it is for.", Text(cut, "#wizard-blocked"));
        Assert.True(IsDisabled(cut, "#wizard-step-source"));
        Assert.True(IsDisabled(cut, "#wizard-back"));

        Click(cut, "#purpose-other");
        Assert.Equal("true", cut.Find("#purpose-other").GetAttribute("aria-checked"));
        Next(cut, "source");
        Assert.True(IsDisabled(cut, "#wizard-next"));
        Assert.True(IsDisabled(cut, "#wizard-step-identity"));

        // fedora-42: its revision, its size as qemu-img has it, and the label of its most trusted qube (work, blue).
        var fedora = cut.Find("#source-fedora-42");
        Assert.False(fedora.HasAttribute("disabled"));
        Assert.Equal("revision 1", fedora.QuerySelector(".qw-source-revision")!.TextContent.Trim());
        Assert.EndsWith("used of 10 GiB", fedora.QuerySelector(".qw-source-size")!.TextContent.Trim());
        Assert.Contains("blue", fedora.QuerySelector(".qw-source-trust")!.TextContent);
        // debian-13 has no root revision: shown, not selectable, with the engine's reason.
        var debian = cut.Find("#source-debian-13");
        Assert.True(debian.HasAttribute("disabled"));
        Assert.Contains("has no committed root revision to copy", debian.QuerySelector(".qw-source-problem")!.TextContent);

        Click(cut, "#source-empty");
        Assert.Equal("true", cut.Find("#source-empty").GetAttribute("aria-checked"));
        Assert.False(IsDisabled(cut, "#wizard-next"));
        Click(cut, "#source-fedora-42");
        Assert.Equal("false", cut.Find("#source-empty").GetAttribute("aria-checked"));
        Next(cut, "identity");
        Assert.True(IsDisabled(cut, "#wizard-next"));
    }

    [Fact]
    public void Every_broken_name_rule_is_listed_and_names_taken_by_a_qube_or_a_libvirt_domain_are_refused()
    {
        Hypervisor.AddForeign("legacy-vm", RunState.Halted);
        var cut = Open();
        ToIdentity(cut, "development", "fedora-42");
        Assert.Empty(NameProblems(cut)); // nothing said before the user types
        Assert.True(IsDisabled(cut, "#wizard-next"));

        foreach (var bad in new[] { "1st vm!", "none", "my-dm", "a-name-that-is-much-longer-than-31", "_x y" })
        {
            Input(cut, "input#wizard-name", bad);
            cut.WaitForAssertion(() => Assert.Equal(QubeRules.NameProblems(bad), NameProblems(cut)), Wait);
            Assert.True(IsDisabled(cut, "#wizard-next"));
        }
        Input(cut, "input#wizard-name", "1st vm!");
        cut.WaitForAssertion(() => Assert.Equal(
        [
            "A name must start with a letter (a-z or A-Z).",
            "A name may contain only letters, digits, '_', '.' and '-'; not spaces, '!'.",
        ], NameProblems(cut)), Wait);

        Input(cut, "input#wizard-name", "work");
        cut.WaitForAssertion(() => Assert.Equal(["A qube named 'work' already exists."], NameProblems(cut)), Wait);
        Assert.True(IsDisabled(cut, "#wizard-next"));

        Input(cut, "input#wizard-name", "legacy-vm");
        cut.WaitForAssertion(() => Assert.Equal(["libvirt already has a domain named 'legacy-vm' that is not a qube of this console."], NameProblems(cut)), Wait);
        Assert.True(IsDisabled(cut, "#wizard-next"));

        Input(cut, "input#wizard-name", "");
        cut.WaitForAssertion(() => Assert.Equal(["A name is required."], NameProblems(cut)), Wait);

        Input(cut, "input#wizard-name", "dev-one");
        cut.WaitForAssertion(() => Assert.Empty(NameProblems(cut)), Wait);
        // Steps not seen yet are neither done nor open from the step list, beyond the next one.
        Assert.DoesNotContain("qw-step-done", cut.Find("#wizard-step-resources").ClassName);
        Assert.False(IsDisabled(cut, "#wizard-step-resources"));
        Assert.True(IsDisabled(cut, "#wizard-step-review"));
        Assert.Contains("qw-step-done", cut.Find("#wizard-step-source").ClassName);
        Next(cut, "resources");
    }

    [Fact]
    public void A_root_smaller_than_the_source_and_resources_out_of_range_are_refused_in_words()
    {
        var cut = Open();
        ToResources(cut, "other", "fedora-42", "sized");
        Assert.Equal("10", ValueOf(cut, "input#wizard-root"));
        Assert.Empty(cut.FindAll(".qw-resource-problem"));

        Change(cut, "input#wizard-root", "5");
        cut.WaitForAssertion(() => Assert.Equal(
            "The root cannot be smaller than 10 GiB, the size of fedora-42's root: choose 10 GiB or more.", Text(cut, "#root-problem")), Wait);
        Assert.True(IsDisabled(cut, "#wizard-next"));
        Assert.Equal("Fix the values marked in red.", Text(cut, "#wizard-blocked"));
        Assert.True(IsDisabled(cut, "#wizard-step-review"));

        Change(cut, "input#wizard-root", "12");
        cut.WaitForAssertion(() => Assert.Empty(cut.FindAll("#root-problem")), Wait);
        Assert.False(IsDisabled(cut, "#wizard-next"));

        Change(cut, "input#wizard-memory", "64");
        Change(cut, "input#wizard-vcpus", "0");
        Change(cut, "input#wizard-private", "0");
        cut.WaitForAssertion(() =>
        {
            Assert.Equal("Memory must be between 128 and 1048576 MiB; 64 was given.", Text(cut, "#memory-problem"));
            Assert.Equal("VCPUs must be between 1 and 256; 0 was given.", Text(cut, "#vcpus-problem"));
            Assert.Equal("The private volume is at least 1 GiB; 0 GiB was given.", Text(cut, "#private-problem"));
        }, Wait);
        Assert.True(IsDisabled(cut, "#wizard-next"));

        Change(cut, "input#wizard-memory", "800");
        Change(cut, "input#wizard-vcpus", "1");
        Change(cut, "input#wizard-private", "3");
        cut.WaitForAssertion(() => Assert.Empty(cut.FindAll(".qw-resource-problem")), Wait);
        Next(cut, "review");
        cut.WaitForAssertion(() =>
        {
            Assert.Equal("800 MiB", Text(cut, "#review-memory"));
            Assert.Equal("1", Text(cut, "#review-vcpus"));
            Assert.StartsWith("12 GiB (grown from 10 GiB)", Text(cut, "#review-root"));
            Assert.Equal("3 GiB, fresh", Text(cut, "#review-private"));
        }, Wait);
    }

    [Fact]
    public void An_empty_root_may_be_small_and_copies_no_private_volume()
    {
        var cut = Open();
        ToResources(cut, "other", "empty", "installer");
        Assert.Equal("10", ValueOf(cut, "input#wizard-root"));
        Assert.True(cut.Find("#wizard-copy-private-box input").HasAttribute("disabled"));
        Change(cut, "input#wizard-root", "1");
        cut.WaitForAssertion(() => Assert.Empty(cut.FindAll(".qw-resource-problem")), Wait);
        Change(cut, "input#wizard-root", "0");
        cut.WaitForAssertion(() => Assert.Equal("The root is at least 1 GiB; 0 GiB was given.", Text(cut, "#root-problem")), Wait);
        Change(cut, "input#wizard-root", "4");
        Next(cut, "review");
        cut.WaitForAssertion(() =>
        {
            Assert.Equal("Empty: an OS is to be installed from media", Text(cut, "#review-source"));
            Assert.Equal("4 GiB, empty", Text(cut, "#review-root"));
            Assert.Contains("It starts empty", Text(cut, "#review-trust"));
        }, Wait);
    }

    [Fact]
    public async Task An_empty_root_can_take_an_installer_ISO_which_the_review_names_and_the_new_qube_boots_first()
    {
        var iso = TestFiles.FakeIso(Path.Combine(Path.GetDirectoryName(PoolDir)!, "debian-12.8.0-amd64-netinst.iso"));
        var cut = Open();
        Click(cut, "#purpose-other");
        Next(cut, "source");
        Assert.Empty(cut.FindAll("#wizard-iso"));
        Click(cut, "#source-empty");
        Input(cut, "input#wizard-iso", iso);
        Next(cut, "identity");
        Input(cut, "input#wizard-name", "installer");
        Next(cut, "resources");
        Next(cut, "review");
        cut.WaitForAssertion(() => Assert.Equal($"{iso}, booted first until its first shutdown", Text(cut, "#review-iso")), Wait);

        Click(cut, "#wizard-create");

        cut.WaitForAssertion(() => Assert.EndsWith("/qubes/installer", Nav.Uri), Wait);
        var qube = await Inventory.GetAsync("installer");
        Assert.Equal((iso, true), (qube.InstallMedia, qube.BootFromMedia));
        Assert.Contains("device=\"cdrom\"", Hypervisor.GetXml("installer"));
    }

    [Fact]
    public void Going_back_and_forth_keeps_every_choice()
    {
        var cut = Open();
        ToIdentity(cut, "untrusted", "fedora-42");
        Input(cut, "input#wizard-name", "keeper");
        Click(cut, "#label-green");
        Input(cut, "textarea#wizard-notes", "Mine: <b>kept</b> as text.");
        Next(cut, "resources");
        Change(cut, "input#wizard-memory", "3000");
        Change(cut, "input#wizard-vcpus", "3");
        Change(cut, "input#wizard-root", "15");
        Change(cut, "input#wizard-private", "5");
        Change(cut, "#wizard-copy-private-box input", true);
        Next(cut, "review");

        void AssertReview()
        {
            cut.WaitForAssertion(() =>
            {
                Assert.Equal("Untrusted software", Text(cut, "#review-purpose"));
                Assert.StartsWith("fedora-42, revision 1", Text(cut, "#review-source"));
                Assert.Equal("keeper", Text(cut, "#review-name"));
                Assert.Equal("green", Text(cut, "#review-label"));
                Assert.Equal("3000 MiB", Text(cut, "#review-memory"));
                Assert.Equal("3", Text(cut, "#review-vcpus"));
                Assert.Equal("sys-firewall", Text(cut, "#review-netvm"));
                Assert.StartsWith("15 GiB", Text(cut, "#review-root"));
                Assert.Equal("5 GiB, a copy of fedora-42's private volume", Text(cut, "#review-private"));
                Assert.Equal("Mine: <b>kept</b> as text.", Text(cut, "#review-notes"));
                Assert.Empty(cut.FindAll("#review-notes b"));
            }, Wait);
        }
        AssertReview();

        // Back one step at a time, each step showing what was chosen.
        Back(cut, "resources");
        Assert.Equal("3000", ValueOf(cut, "input#wizard-memory"));
        Assert.Equal("3", ValueOf(cut, "input#wizard-vcpus"));
        Assert.Equal("15", ValueOf(cut, "input#wizard-root"));
        Assert.Equal("5", ValueOf(cut, "input#wizard-private"));
        Assert.True(cut.Find("#wizard-copy-private-box input").HasAttribute("checked"));
        Back(cut, "identity");
        Assert.Equal("keeper", ValueOf(cut, "input#wizard-name"));
        Assert.Equal("green", Text(cut, "#wizard-label"));
        Assert.Equal("true", cut.Find("#label-green").GetAttribute("aria-checked"));
        Assert.Equal("Mine: <b>kept</b> as text.", cut.Find("textarea#wizard-notes").GetAttribute("value") ?? cut.Find("textarea#wizard-notes").TextContent);
        Back(cut, "source");
        Assert.Equal("true", cut.Find("#source-fedora-42").GetAttribute("aria-checked"));
        Back(cut, "purpose");
        Assert.Equal("true", cut.Find("#purpose-untrusted").GetAttribute("aria-checked"));

        // The step list says what each complete step holds, and jumps straight to any step whose previous steps are complete.
        Assert.Contains("fedora-42", Text(cut, "#wizard-step-source"));
        Assert.Contains("keeper, green", Text(cut, "#wizard-step-identity"));
        Assert.Contains("3000 MiB, 15 GiB", Text(cut, "#wizard-step-resources"));
        Click(cut, "#wizard-step-review");
        cut.WaitForAssertion(() => Assert.Equal("review", StepOf(cut)), Wait);
        Assert.Contains("Untrusted", Text(cut, "#wizard-step-purpose"));
        AssertReview();

        // And forward again step by step from the start.
        Click(cut, "#wizard-step-purpose");
        cut.WaitForAssertion(() => Assert.Equal("purpose", StepOf(cut)), Wait);
        Next(cut, "source");
        Next(cut, "identity");
        Next(cut, "resources");
        Next(cut, "review");
        AssertReview();
    }

    [Fact]
    public void Presets_fill_the_fields_the_user_has_not_touched_and_never_the_others()
    {
        var cut = Open();
        ToIdentity(cut, "development", "fedora-42");
        Assert.Equal("orange", Text(cut, "#wizard-label"));
        Assert.Equal("", cut.Find("textarea#wizard-notes").GetAttribute("value") ?? "");
        Input(cut, "input#wizard-name", "preset");
        Next(cut, "resources");
        Assert.Equal("4000", ValueOf(cut, "input#wizard-memory"));
        Assert.Equal("2", ValueOf(cut, "input#wizard-vcpus"));
        Assert.Equal("20", ValueOf(cut, "input#wizard-root"));
        Assert.Equal("2", ValueOf(cut, "input#wizard-private"));
        Assert.False(cut.Find("#wizard-copy-private-box input").HasAttribute("checked"));
        Next(cut, "review");
        cut.WaitForAssertion(() => Assert.Equal("sys-firewall", Text(cut, "#review-netvm")), Wait);
        Assert.Contains("as trusted as the template it came from, until you install software into it", Text(cut, "#review-trust"));

        // The user sets memory and the label; then changes the purpose.
        Back(cut, "resources");
        Change(cut, "input#wizard-memory", "3000");
        Back(cut, "identity");
        Click(cut, "#label-blue");
        Click(cut, "#wizard-step-purpose");
        cut.WaitForAssertion(() => Assert.Equal("purpose", StepOf(cut)), Wait);
        Click(cut, "#purpose-untrusted");

        Next(cut, "source");
        Next(cut, "identity");
        Assert.Equal("blue", Text(cut, "#wizard-label"));
        Assert.Equal(StandaloneChoices.UntrustedNotes, cut.Find("textarea#wizard-notes").GetAttribute("value") ?? cut.Find("textarea#wizard-notes").TextContent);
        Next(cut, "resources");
        Assert.Equal("3000", ValueOf(cut, "input#wizard-memory"));
        Assert.Equal("10", ValueOf(cut, "input#wizard-root")); // untouched: back to the source's size
        Next(cut, "review");
        cut.WaitForAssertion(() => Assert.Contains("treat everything in it as compromised; give it no secrets", Text(cut, "#review-trust")), Wait);

        // Notes written by the user survive the next change of purpose; untouched fields follow it (other: the template's).
        Back(cut, "resources");
        Back(cut, "identity");
        Input(cut, "textarea#wizard-notes", "my own notes");
        Click(cut, "#wizard-step-purpose");
        cut.WaitForAssertion(() => Assert.Equal("purpose", StepOf(cut)), Wait);
        Click(cut, "#purpose-other");
        Click(cut, "#wizard-step-review");
        cut.WaitForAssertion(() =>
        {
            Assert.Equal("review", StepOf(cut));
            Assert.Equal("blue", Text(cut, "#review-label"));
            Assert.Equal("3000 MiB", Text(cut, "#review-memory"));
            Assert.Equal("2", Text(cut, "#review-vcpus"));
            Assert.Equal("my own notes", Text(cut, "#review-notes"));
            Assert.Equal("sys-firewall", Text(cut, "#review-netvm"));
        }, Wait);
        // Without the user's memory, "other" takes the template's (fedora-42: 1024 MiB).
        var choices = new StandaloneChoices();
        choices.ChooseSource(new SourceDefaults("fedora-42", 1024, 2, 10 * GiB), "sys-firewall");
        choices.ChoosePurpose(StandalonePurpose.Other, "sys-firewall");
        Assert.Equal((1024, "purple", 10), (choices.MemoryMiB, choices.Label, choices.RootGiB));
    }

    [Fact]
    public void The_query_preselects_the_source_and_the_purpose()
    {
        var cut = Open("create/standalone?source=fedora-42&purpose=untrusted");
        Assert.Equal("true", cut.Find("#purpose-untrusted").GetAttribute("aria-checked"));
        Next(cut, "source");
        Assert.Equal("true", cut.Find("#source-fedora-42").GetAttribute("aria-checked"));
        Assert.Empty(cut.FindAll("#source-notice"));
        Next(cut, "identity");
        Assert.Equal("red", Text(cut, "#wizard-label"));
    }

    [Theory]
    [InlineData("create/standalone?source=debian-13&purpose=nonsense", "debian-13 cannot be copied: ")]
    [InlineData("create/standalone?source=%3Cb%3Enope%3C%2Fb%3E&purpose=1", "'<b>nope</b>' is not a template of this console; choose a source below.")]
    public void A_source_in_the_query_that_cannot_be_copied_is_said_and_nothing_is_preselected(string url, string notice)
    {
        var cut = Open(url);
        Assert.Empty(cut.FindAll("[role='radio'][aria-checked='true']"));
        Click(cut, "#purpose-other");
        Next(cut, "source");
        Assert.StartsWith(notice, Text(cut, "#source-notice"));
        Assert.Empty(cut.FindAll("#source-notice b"));
        Assert.Empty(cut.FindAll("[role='radio'][aria-checked='true']"));
        Assert.True(IsDisabled(cut, "#wizard-next"));
    }

    // ---- review: disk space

    [Fact]
    public async Task The_review_shows_the_space_the_copy_takes_against_the_free_space_and_refuses_a_copy_that_does_not_fit()
    {
        var free = new DriveInfo(Path.GetFullPath(Directory.CreateDirectory(PoolDir).FullName)).AvailableFreeSpace;
        var huge = (free / GiB + 64) * GiB;
        await AddTemplateOnSparseDataAsync("huge", huge);

        var cut = Open();
        ToReview(cut, "other", "huge", "too-big");
        var space = cut.Find("#review-space");
        Assert.Equal("false", space.GetAttribute("data-fits"));
        Assert.True(long.Parse(space.GetAttribute("data-required")!, CultureInfo.InvariantCulture) >= huge);
        Assert.True(long.Parse(space.GetAttribute("data-free")!, CultureInfo.InvariantCulture) < huge);
        Assert.StartsWith("Not enough space: once independent the copy needs", Text(cut, "#review-no-space"));
        Assert.True(IsDisabled(cut, "#wizard-create"));

        // Another source that fits: the same page measures again, shows the figures and allows Create.
        Click(cut, "#wizard-step-source");
        cut.WaitForAssertion(() => Assert.Equal("source", StepOf(cut)), Wait);
        Click(cut, "#source-fedora-42");
        Click(cut, "#wizard-step-review");
        cut.WaitForAssertion(() => Assert.Equal("true", cut.Find("#review-space").GetAttribute("data-fits")), Wait);
        var plan = await Clones.PlanAsync(new CloneRequest(QubeClass.StandaloneVM, "fedora-42", "purple", RootSizeBytes: 10 * GiB, PrivateSizeBytes: 2 * GiB));
        Assert.Equal(plan.RequiredBytes.ToString(CultureInfo.InvariantCulture), cut.Find("#review-space").GetAttribute("data-required"));
        Assert.StartsWith($"It is usable at once and becomes independent of fedora-42 in the background; then it will take {Format.Bytes(plan.RequiredBytes)}. The pool has ", Text(cut, "#review-space-text"));
        Assert.Empty(cut.FindAll("#review-no-space"));
        Assert.False(IsDisabled(cut, "#wizard-create"));

        // Copying the private volume too is measured as well.
        Click(cut, "#wizard-step-resources");
        cut.WaitForAssertion(() => Assert.Equal("resources", StepOf(cut)), Wait);
        Change(cut, "#wizard-copy-private-box input", true);
        Next(cut, "review");
        cut.WaitForAssertion(() => Assert.Equal("true", cut.Find("#review-space").GetAttribute("data-fits")), Wait);
    }

    // ---- create

    [Fact]
    public async Task Create_runs_the_clone_job_with_live_progress_and_opens_the_new_qube()
    {
        var cut = Open();
        ToReview(cut, "development", "fedora-42", "dev-one");
        Click(cut, "#wizard-create");

        cut.WaitForAssertion(() => Assert.EndsWith("/qubes/dev-one", Nav.Uri), Wait);
        cut.WaitForAssertion(() =>
        {
            Assert.Equal("create", StepOf(cut));
            Assert.Equal("100", cut.Find("#wizard-progress").GetAttribute("data-progress"));
            Assert.Equal("succeeded", cut.Find("#wizard-progress").GetAttribute("data-state"));
            Assert.Equal("dev-one created; opening its page.", Text(cut, "#wizard-done"));
            Assert.Equal("dev-one created", Text(cut, "#wizard-creating"));
        }, Wait);
        Assert.Empty(cut.FindAll("#wizard-cancel"));

        var qube = await Inventory.GetAsync("dev-one");
        Assert.Equal(QubeClass.StandaloneVM, qube.Class);
        Assert.Equal(("orange", 4000, 2, "sys-firewall", ""), (qube.Label.Name, qube.MemoryMiB, qube.VCpus, qube.NetVm?.Name, qube.Notes));
        var root = qube.Volumes.Single(v => v.Kind == VolumeKind.Root);
        Assert.Equal(20 * GiB, root.VirtualSizeBytes);
        Assert.Equal(1, root.CurrentRevision);
        Assert.Equal(2 * GiB, qube.Volumes.Single(v => v.Kind == VolumeKind.Private).VirtualSizeBytes);
        Assert.NotNull(Hypervisor.GetDomain("dev-one"));
        var job = (await Jobs.QueryAsync(new JobQuery { Target = "dev-one" })).Single(j => JobKind.Clone.Is(j));
        Assert.Equal(JobState.Succeeded, job.State);
        // The copy that makes it independent runs as a job of its own, after the clone.
        var detach = (await Jobs.QueryAsync(new JobQuery { Target = "dev-one" })).Single(j => JobKind.Detach.Is(j));
        Assert.Equal(JobState.Succeeded, (await Jobs.WaitAsync(detach.Id, CancellationToken.None)).State);
    }

    [Fact]
    public async Task A_failed_job_shows_its_error_as_text_and_back_returns_to_the_review_with_every_choice()
    {
        // A folder of that name with something in it: the job refuses to write over it, and fails.
        var stray = Directory.CreateDirectory(Path.Combine(PoolDir, "dev-two")).FullName;
        await File.WriteAllTextAsync(Path.Combine(stray, "keep.txt"), "not the job's");

        var cut = Open();
        ToIdentity(cut, "untrusted", "fedora-42");
        Input(cut, "input#wizard-name", "dev-two");
        Click(cut, "#label-yellow");
        Next(cut, "resources");
        Change(cut, "input#wizard-memory", "1500");
        Next(cut, "review");
        cut.WaitForElement("#review-space-text", Wait);
        Click(cut, "#wizard-create");

        cut.WaitForAssertion(() =>
        {
            Assert.Equal("failed", cut.Find("#wizard-progress").GetAttribute("data-state"));
            Assert.Contains($"The pool already has a folder for 'dev-two' ({stray}); remove or rename it first.", Text(cut, "#wizard-error"));
            Assert.Equal("Back to review", Text(cut, "#wizard-back"));
        }, Wait);
        Assert.DoesNotContain("/qubes/", Nav.Uri);
        Assert.Null(await Inventory.FindAsync("dev-two"));
        Assert.True(File.Exists(Path.Combine(stray, "keep.txt")));

        Click(cut, "#wizard-back");
        cut.WaitForAssertion(() =>
        {
            Assert.Equal("review", StepOf(cut));
            Assert.Equal("dev-two", Text(cut, "#review-name"));
            Assert.Equal("yellow", Text(cut, "#review-label"));
            Assert.Equal("1500 MiB", Text(cut, "#review-memory"));
            Assert.Equal(StandaloneChoices.UntrustedNotes, Text(cut, "#review-notes"));
            Assert.False(IsDisabled(cut, "#wizard-create"));
        }, Wait);

        // The cause removed, the same choices go through.
        Directory.Delete(stray, recursive: true);
        Click(cut, "#wizard-create");
        cut.WaitForAssertion(() => Assert.EndsWith("/qubes/dev-two", Nav.Uri), Wait);
        var qube = await Inventory.GetAsync("dev-two");
        Assert.Equal(("yellow", 1500, StandaloneChoices.UntrustedNotes), (qube.Label.Name, qube.MemoryMiB, qube.Notes));
    }

    [Fact]
    public async Task A_refused_enqueue_stays_on_the_review_with_the_engines_message()
    {
        var cut = Open();
        ToReview(cut, "other", "fedora-42", "raced");
        // Another tab takes the name after this one checked it.
        await Inventory.CreateAsync(new NewQube("raced", QubeClass.AppVM, "blue", "fedora-42"));

        Click(cut, "#wizard-create");

        cut.WaitForAssertion(() =>
        {
            Assert.Equal("review", StepOf(cut));
            Assert.Equal("A qube named 'raced' already exists; choose another name.", Text(cut, "#wizard-create-error"));
            Assert.True(IsDisabled(cut, "#wizard-create"));
        }, Wait);
        Assert.Empty(cut.FindAll("#wizard-progress"));
        Assert.Empty(await Jobs.QueryAsync(new JobQuery { Target = "raced" }));

        Click(cut, "#wizard-step-identity");
        cut.WaitForAssertion(() => Assert.Equal(["A qube named 'raced' already exists."], NameProblems(cut)), Wait);
        Input(cut, "input#wizard-name", "raced-2");
        Click(cut, "#wizard-step-review");
        cut.WaitForAssertion(() => Assert.False(IsDisabled(cut, "#wizard-create")), Wait);
        Assert.Empty(cut.FindAll("#wizard-create-error"));
    }

    [Fact]
    public async Task A_standalone_of_a_big_template_is_made_at_once_and_its_page_opens_while_the_copy_runs()
    {
        await AddTemplateOnSparseDataAsync("slow", 16 * GiB);
        var cut = Open();
        ToReview(cut, "other", "slow", "slow-one");
        cut.WaitForAssertion(() => Assert.Equal("true", cut.Find("#review-space").GetAttribute("data-fits")), Wait);
        Click(cut, "#wizard-create");

        // No 16 GiB copy before the qube exists: its page opens, and the copy runs behind it.
        cut.WaitForAssertion(() => Assert.EndsWith("/qubes/slow-one", Nav.Uri), Wait);
        Assert.NotNull(Hypervisor.GetDomain("slow-one"));
        Assert.Equal("slow", (await Services.GetRequiredService<RootDetach>().DependencyAsync("slow-one"))?.Source);
        // Not left copying 16 GiB while the test's folder goes.
        await Services.GetRequiredService<DetachCommands>().PauseAsync("slow-one");
    }
}

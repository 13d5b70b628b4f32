// The import page rendered with bUnit over the real inventory, job engine and import job (the hypervisor is the
// in-memory fake), on real image files made with qemu-img in the test's own folder: what a check shows, the names and
// families it suggests, the refusals it shows in place, and an import that queues its task and opens it.
using System.Security.Cryptography;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Web;
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Storage;
using ImportPage = QubesWeb.Components.Pages.Templates.ImportTemplate;

namespace QubesWeb.ComponentTests;

public sealed class ImportTemplatePageTests : ConsoleTestContext
{
    private string Images
    {
        get
        {
            var dir = Path.Combine(Path.GetDirectoryName(PoolDir)!, "images");
            Directory.CreateDirectory(dir);
            return dir;
        }
    }

    private async Task<string> ImageAsync(string name, long virtualBytes = 3L << 30)
    {
        var path = Path.Combine(Images, name);
        await QemuImg.CreateAsync(path, virtualBytes);
        await QemuImg.WritePatternAsync(path, 0x11, 0, 1 << 20);
        return path;
    }

    private static string Sha256(string path)
    {
        using var f = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }

    private IRenderedComponent<ImportPage> RenderPage()
    {
        RenderProviders(dialogs: false, snackbars: false);
        var cut = Render<ImportPage>();
        cut.WaitForAssertion(() => Assert.NotNull(cut.Find("#import-label-black")), Wait);
        return cut;
    }

    private static Task InputAsync(IRenderedComponent<ImportPage> cut, string id, string value) =>
        cut.InvokeAsync(() => cut.Find($"input#{id}").Input(value));

    private static Task ClickAsync(IRenderedComponent<ImportPage> cut, string id) =>
        cut.InvokeAsync(() => cut.Find($"#{id}").ClickAsync(new MouseEventArgs()));

    private static string Text(IRenderedComponent<ImportPage> cut, string selector) => cut.Find(selector).TextContent.Trim();

    private static bool ImportDisabled(IRenderedComponent<ImportPage> cut) => cut.Find("#import-confirm").HasAttribute("disabled");

    [Fact]
    public async Task A_checked_image_shows_its_format_size_and_expected_digest_and_suggests_a_name_and_family()
    {
        var image = await ImageAsync("Fedora-Cloud-Base-Generic-42-1.1.x86_64.qcow2");
        var sums = Path.Combine(Images, "Fedora-Cloud-42-1.1-x86_64-CHECKSUM");
        await File.WriteAllTextAsync(sums, $"SHA256 (Fedora-Cloud-Base-Generic-42-1.1.x86_64.qcow2) = {Sha256(image)}\n");
        var cut = RenderPage();

        await InputAsync(cut, "import-path", image);
        await ClickAsync(cut, "import-check");

        cut.WaitForAssertion(() => Assert.Equal("qcow2", Text(cut, "#import-plan td[data-format]")), Wait);
        Assert.Equal((3L << 30).ToString(), cut.Find("#import-plan td[data-virtual]").GetAttribute("data-virtual"));
        Assert.Equal(Sha256(image), Text(cut, "#import-plan [data-digest]"));
        Assert.Contains($"listed in {sums}", Text(cut, "#import-checksum-source"));
        Assert.Equal("Fedora-Cloud-Base-Generic-42-1", cut.Find("input#import-name").GetAttribute("value"));
        Assert.Equal("fedora", cut.Find("[data-os]").GetAttribute("data-os"));
        // The image is 3 GiB: the default 10 GiB root stays, and less than the image is refused in place.
        Assert.Equal("10", cut.Find("input#import-root-size").GetAttribute("value"));
        await cut.InvokeAsync(() => cut.Find("input#import-root-size").Change("2"));
        cut.WaitForAssertion(() => Assert.Contains("The root cannot be smaller than the image (3 GiB).", cut.Markup), Wait);
        Assert.True(ImportDisabled(cut));
        Assert.Empty(await Jobs.RecentAsync(10));
    }

    [Fact]
    public async Task What_the_console_will_not_import_is_said_in_place_and_nothing_is_queued()
    {
        var vmdk = Path.Combine(Images, "appliance.vmdk");
        await ProcessRunner.RunCheckedAsync(QemuImg.QemuImgPath, ["create", "-q", "-f", "vmdk", "--", vmdk, "64M"]);
        var unlisted = await ImageAsync("unlisted.qcow2");
        var cut = RenderPage();

        await InputAsync(cut, "import-path", Path.Combine(Images, "missing.qcow2"));
        await ClickAsync(cut, "import-check");
        cut.WaitForAssertion(() => Assert.Equal($"There is no file {Path.Combine(Images, "missing.qcow2")}.", Text(cut, "#import-check-error")), Wait);

        await InputAsync(cut, "import-path", vmdk);
        await ClickAsync(cut, "import-check");
        cut.WaitForAssertion(() => Assert.StartsWith($"{vmdk} is a vmdk image; the console imports qcow2 and raw. Convert it first", Text(cut, "#import-check-error")), Wait);

        await InputAsync(cut, "import-path", unlisted);
        await InputAsync(cut, "import-checksum", "not-a-digest");
        await ClickAsync(cut, "import-check");
        cut.WaitForAssertion(() => Assert.StartsWith("The checksum is not a SHA-256", Text(cut, "#import-check-error")), Wait);
        Assert.Empty(cut.FindAll("#import-plan"));

        // No digest and no checksum file: Import says so and queues nothing.
        await InputAsync(cut, "import-checksum", "");
        await InputAsync(cut, "import-name", "unlisted");
        await ClickAsync(cut, "import-confirm");
        cut.WaitForAssertion(() => Assert.Contains($"none in {Images} lists unlisted.qcow2", Text(cut, "#import-error")), Wait);

        // A name that is taken or invalid is said as it is typed, and Import stays off.
        await InputAsync(cut, "import-name", "fedora-42");
        cut.WaitForAssertion(() => Assert.Contains("A qube named 'fedora-42' already exists.", cut.Markup), Wait);
        Assert.True(ImportDisabled(cut));
        await InputAsync(cut, "import-name", "1st");
        cut.WaitForAssertion(() => Assert.Contains("A name must start with a letter", cut.Markup), Wait);
        Assert.True(ImportDisabled(cut));

        Assert.Empty(await Jobs.RecentAsync(10));
        Assert.False(Directory.Exists(Path.Combine(PoolDir, "unlisted")));
    }

    [Fact]
    public async Task Import_queues_the_task_opens_it_and_the_template_is_made()
    {
        var image = await ImageAsync("debian-12-genericcloud-amd64.qcow2", 2L << 30);
        var cut = RenderPage();

        await InputAsync(cut, "import-path", image);
        await InputAsync(cut, "import-checksum", Sha256(image));
        await InputAsync(cut, "import-name", "debian-12");
        await ClickAsync(cut, "import-label-purple");
        await ClickAsync(cut, "import-confirm");

        var job = Assert.Single(await Jobs.RecentAsync(10));
        cut.WaitForAssertion(() => Assert.EndsWith($"/tasks/{job.Id}", Nav.Uri), Wait);
        Assert.Equal("debian-12", job.Target);
        var done = await FinishedAsync(Services, job.Id);
        Assert.True(done.State == JobState.Succeeded, done.Error);
        var template = await Inventory.GetAsync("debian-12");
        Assert.Equal(QubeClass.TemplateVM, template.Class);
        Assert.Equal("purple", template.Label.Name);
        Assert.Equal("debian", template.Feature("os-distribution"));
        Assert.Equal(10L << 30, template.Volumes.Single(v => v.Kind == VolumeKind.Root).VirtualSizeBytes);
    }
}

/// <summary>A real host's first start: dom0 alone, and the dashboard and the templates page point to the import.</summary>
public sealed class NoTemplateYetTests() : ConsoleTestContext(seeded: false)
{
    [Fact]
    public void With_no_template_the_dashboard_and_the_templates_page_point_to_the_import()
    {
        RenderProviders(dialogs: false, snackbars: false);
        var dashboard = Render<QubesWeb.Components.Pages.Dashboard.Dashboard>();
        dashboard.WaitForAssertion(() => Assert.Equal("/templates/import", dashboard.Find("#no-template-yet a#dashboard-import").GetAttribute("href")), Wait);

        var templates = Render<QubesWeb.Components.Pages.Templates.Templates>();
        templates.WaitForAssertion(() => Assert.Equal("/templates/import", templates.Find("#no-templates a").GetAttribute("href")), Wait);
    }
}

/// <summary>With templates, the dashboard has no such hint.</summary>
public sealed class TemplatesPresentTests : ConsoleTestContext
{
    [Fact]
    public void With_templates_the_dashboard_does_not_offer_a_first_import()
    {
        RenderProviders(dialogs: false, snackbars: false);
        var dashboard = Render<QubesWeb.Components.Pages.Dashboard.Dashboard>();
        dashboard.WaitForAssertion(() => Assert.NotEmpty(dashboard.FindAll("[data-testid='template-fedora-42']")), Wait);
        Assert.Empty(dashboard.FindAll("#no-template-yet"));
    }
}

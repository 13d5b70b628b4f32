// A first template from an image on dom0's disk, in headless Chromium: Templates -> Import, the image checked (its
// format, size and the digest a SHA256SUMS file beside it lists), the name and OS family the file name suggests,
// the task running to its end, and the template on the templates page.
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using QubesWeb.Hypervisor.Storage;

namespace QubesWeb.EndToEndTests;

public sealed class ImportTemplateTests(BrowserFixture browser) : IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task An_image_with_its_SHA256SUMS_beside_it_is_imported_from_the_templates_page_and_the_template_appears()
    {
        await using var tab = await browser.OpenConsoleAsync();
        var (host, page) = tab;
        var images = Path.Combine(host.DataDir, "images");
        Directory.CreateDirectory(images);
        var image = Path.Combine(images, "debian-12-genericcloud-amd64.qcow2");
        await QemuImg.CreateAsync(image, 2L << 30);
        await QemuImg.WritePatternAsync(image, 0x42, 1 << 20, 16 << 20);
        string digest;
        await using (var f = File.OpenRead(image)) digest = Convert.ToHexStringLower(SHA256.HashData(f));
        await File.WriteAllTextAsync(Path.Combine(images, "SHA256SUMS"), $"{digest} *debian-12-genericcloud-amd64.qcow2\n");

        await ConsolePage.OpenAsync(page, "/templates");
        await page.Locator("#templates-import").ClickAsync();
        await Expect(page).ToHaveURLAsync(new Regex("/templates/import$"));
        await page.Locator("#import-path").FillAsync(image);
        await page.Locator("#import-check").ClickAsync();

        await Expect(page.Locator("#import-plan td[data-format]")).ToHaveTextAsync("qcow2");
        await Expect(page.Locator("#import-plan [data-digest]")).ToHaveTextAsync(digest);
        await Expect(page.Locator("#import-checksum-source")).ToContainTextAsync($"listed in {Path.Combine(images, "SHA256SUMS")}");
        await Expect(page.Locator("#import-name")).ToHaveValueAsync("debian-12-genericcloud-amd64");
        await Expect(page.Locator("[data-os]")).ToHaveAttributeAsync("data-os", "debian");
        await page.Locator("#import-name").FillAsync("debian-12");
        await page.Locator("#import-label-blue").ClickAsync();
        await Screenshots.SaveAsync(page, "import-checked");

        await page.Locator("#import-confirm").ClickAsync();
        await Expect(page).ToHaveURLAsync(new Regex("/tasks/[0-9]+$"));
        await Expect(page.Locator("#task-title")).ToContainTextAsync("Import template debian-12");
        await Expect(page.Locator("[data-job-state]").First).ToHaveAttributeAsync("data-job-state", "succeeded");
        await Expect(page.Locator("#task-log")).ToContainTextAsync("SHA-256 matches.");

        await ConsolePage.OpenAsync(page, "/templates");
        var row = page.Locator("tr[data-template='debian-12']");
        await Expect(row).ToHaveCountAsync(1);
        await Expect(row.Locator("[aria-label='label blue']")).ToHaveCountAsync(1);
        await Screenshots.SaveAsync(page, "import-done");
    }
}

// Screenshots land in <repo>/artifacts/screenshots (git-ignored), for people to look at after a run.
using Microsoft.Playwright;

namespace QubesWeb.EndToEndTests;

public static class Screenshots
{
    private static readonly Lazy<string> Folder = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "QubesWeb.sln"))) dir = dir.Parent;
        if (dir is null) throw new DirectoryNotFoundException($"No QubesWeb.sln above {AppContext.BaseDirectory}.");
        return Directory.CreateDirectory(Path.Combine(dir.FullName, "artifacts", "screenshots")).FullName;
    });

    public static string Dir => Folder.Value;

    public static async Task<string> SaveAsync(IPage page, string name)
    {
        var path = Path.Combine(Folder.Value, name + ".png");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        return path;
    }
}
